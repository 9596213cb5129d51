package cjdbc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/storetest"
	"github.com/lossbench/lossbench/chaos/dbserver"
)

// crashOnClose drops the store as kill -9 would instead of closing it.
type crashOnClose struct{ *Store }

func (c crashOnClose) Close() error {
	c.crash()
	return nil
}

// TestConformance runs the store suite over two SQLite files (under each
// policy), two PostgreSQL servers, and PostgreSQL plus MariaDB.
func TestConformance(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		kinds  []string
		crash  bool
	}{
		{"sqlite+sqlite/all", All, []string{"sqlite", "sqlite"}, false},
		{"sqlite+sqlite/majority", Majority, []string{"sqlite", "sqlite"}, false},
		{"sqlite+sqlite/first", First, []string{"sqlite", "sqlite"}, false},
		{"sqlite+sqlite/first/crash", First, []string{"sqlite", "sqlite"}, true},
		{"postgres+postgres/all", All, []string{"postgres", "postgres"}, false},
		{"postgres+mariadb/all", All, []string{"postgres", "mariadb"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Harness {
				set := newSet(t, c.policy, 1, c.kinds...)
				return storetest.Harness{Durable: true, LargeBody: 1 << 20, Open: func(t *testing.T) store.Store {
					s := set.open(t)
					if c.crash {
						return crashOnClose{s}
					}
					return s
				}}
			})
		})
	}
}

// TestTwoPostgresServers checks the set really is on two servers: their
// addresses differ.
func TestTwoPostgresServers(t *testing.T) {
	a, b := poolA.Server(t, dbserver.Postgres), poolB.Server(t, dbserver.Postgres)
	if a.Addr() == b.Addr() {
		t.Fatalf("both pools on %s", a.Addr())
	}
}

// writeN adds n messages one Write each and returns them.
func writeN(t *testing.T, s store.Store, from, n int) []*store.Message {
	t.Helper()
	var out []*store.Message
	for i := from; i < from+n; i++ {
		m := msg(i)
		if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{m}}); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
		out = append(out, m)
	}
	return out
}

func ack(t *testing.T, s store.Store, ms ...*store.Message) {
	t.Helper()
	var seqs []uint64
	for _, m := range ms {
		seqs = append(seqs, m.Seq)
	}
	if err := s.Write(ctx, &store.Batch{Acks: seqs}); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func wantContent(t *testing.T, set *set, i int, want map[uint64]string) {
	t.Helper()
	got, _ := set.content(t, i)
	if len(got) != len(want) {
		t.Fatalf("database %d holds %d messages, want %d", i, len(got), len(want))
	}
	for seq, body := range want {
		if got[seq] != body {
			t.Fatalf("database %d: message %d = %q, want %q", i, seq, got[seq], body)
		}
	}
}

func liveOf(all []*store.Message, acked map[uint64]bool) map[uint64]string {
	out := map[uint64]string{}
	for _, m := range all {
		if !acked[m.Seq] {
			out[m.Seq] = string(m.Body)
		}
	}
	return out
}

// TestDisableAndResync: a database failing is disabled, the store goes on
// on the other; when it answers again it is copied to, replays what came
// meanwhile and is enabled, holding every message the other holds.
func TestDisableAndResync(t *testing.T) {
	set := newSet(t, All, 1, "sqlite", "sqlite")
	s := set.open(t)
	defer s.Close()
	all := writeN(t, s, 0, 20)
	acked := map[uint64]bool{}
	ack(t, s, all[0], all[1])
	acked[all[0].Seq], acked[all[1].Seq] = true, true

	set.faults[1].setDown(true)
	all = append(all, writeN(t, s, 20, 20)...) // the first of these disables database 1
	if st := state(s, 1); st != Disabled {
		t.Fatalf("database 1 state %d after failing, want disabled", st)
	}
	ack(t, s, all[2], all[25])
	acked[all[2].Seq], acked[all[25].Seq] = true, true
	if got := s.Stats()["db_1_lag_groups"]; got < 20 {
		t.Fatalf("database 1 lag %v groups, want at least 20", got)
	}
	// Database 1 missed those: it still holds message 2.
	if c, _ := set.content(t, 1); c[all[2].Seq] == "" {
		t.Fatalf("database 1 lost message %d while disabled (the test reads it wrong)", all[2].Seq)
	}

	set.faults[1].setDown(false)
	waitFor(t, "database 1 enabled", func() bool { return state(s, 1) == Enabled })
	all = append(all, writeN(t, s, 40, 5)...)
	want := liveOf(all, acked)
	wantContent(t, set, 0, want)
	wantContent(t, set, 1, want)
	if s.Stats()["db_1_resyncs_total"] != 1 {
		t.Fatalf("resyncs %v, want 1", s.Stats()["db_1_resyncs_total"])
	}
}

// TestResyncUnderLoad: database 1 comes back while writers add and ack;
// the copy and the replay of the groups during it leave it equal to
// database 0.
func TestResyncUnderLoad(t *testing.T) {
	set := newSet(t, All, 1, "sqlite", "sqlite")
	s := set.open(t)
	defer s.Close()
	set.faults[1].setDown(true)
	base := writeN(t, s, 0, 300) // a backlog for the copy to take time over
	held, release := set.faults[1].holdCopies()
	set.faults[1].setDown(false)

	var (
		mu    sync.Mutex
		all   = append([]*store.Message(nil), base...)
		acked = map[uint64]bool{}
		wg    sync.WaitGroup
		errs  = make(chan error, 4)
		stop  = make(chan struct{})
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := msg(1000*(w+1) + i)
				b := &store.Batch{Adds: []*store.Message{m}}
				mu.Lock()
				victim := base[(w*75+i)%300]
				if !acked[victim.Seq] {
					acked[victim.Seq] = true
					b.Acks = []uint64{victim.Seq}
				}
				mu.Unlock()
				if err := s.Write(ctx, b); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				all = append(all, m)
				mu.Unlock()
			}
		}(w)
	}
	<-held // the copy is under way, writers going on
	release()
	waitFor(t, "database 1 enabled", func() bool { return state(s, 1) == Enabled })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := liveOf(all, acked)
	wantContent(t, set, 0, want)
	wantContent(t, set, 1, want)
}

// TestCrashDuringResync: the broker dies while a returning database is
// being copied to; on the next Open it is behind and is copied again,
// and both hold every message.
func TestCrashDuringResync(t *testing.T) {
	set := newSet(t, All, 1, "sqlite", "sqlite")
	s := set.open(t)
	all := writeN(t, s, 0, 10)
	set.faults[1].setDown(true)
	all = append(all, writeN(t, s, 10, 30)...)
	ack(t, s, all[3], all[15])
	acked := map[uint64]bool{all[3].Seq: true, all[15].Seq: true}
	held, _ := set.faults[1].holdCopies()
	set.faults[1].setDown(false)
	<-held
	s.crash()
	if _, st := set.content(t, 1); st.Applied >= 40 {
		t.Fatalf("database 1 at group %d after a crash mid-copy: the copy was not one transaction", st.Applied)
	}

	s = set.open(t)
	defer s.Close()
	if st := state(s, 1); st != Enabled {
		t.Fatalf("database 1 state %d after Open, want enabled", st)
	}
	all = append(all, writeN(t, s, 40, 3)...)
	want := liveOf(all, acked)
	wantContent(t, set, 0, want)
	wantContent(t, set, 1, want)
	var got []uint64
	if err := s.Recover(ctx, func(m *store.Message) error { got = append(got, m.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("recovered %d, want %d", len(got), len(want))
	}
}

// TestOpenNeedsEnoughDatabases: under all with min-databases 1 a single
// database may hold acknowledged writes the other lacks, so Open refuses
// to start on one of two; with min-databases 2 one of two is enough.
func TestOpenNeedsEnoughDatabases(t *testing.T) {
	set := newSet(t, All, 1, "sqlite", "sqlite")
	s := set.open(t)
	set.faults[0].setDown(true)
	writeN(t, s, 0, 5) // database 0 disabled: only database 1 has these
	s.Close()
	set.faults[0].setDown(false)
	set.faults[1].setDown(true)
	// Open waits for enough databases until its context ends.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := Open(short, set.opts); err == nil {
		t.Fatal("Open on the stale database alone succeeded")
	}
	// And goes on once the missing one answers.
	opened := make(chan error, 1)
	go func() {
		s, err := Open(ctx, set.opts)
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	time.Sleep(50 * time.Millisecond)
	set.faults[1].setDown(false)
	if err := <-opened; err != nil {
		t.Fatalf("Open waiting for database 1: %v", err)
	}
	s = set.open(t)
	defer s.Close()
	var n int
	s.Recover(ctx, func(*store.Message) error { n++; return nil })
	if n != 5 {
		t.Fatalf("recovered %d, want 5 (the source must be the database ahead)", n)
	}

	set2 := newSet(t, All, 2, "sqlite", "sqlite")
	s2 := set2.open(t)
	s2.Close()
	set2.faults[1].setDown(true)
	s2, err := Open(ctx, set2.opts)
	if err != nil {
		t.Fatalf("Open with min-databases 2 on one of two: %v", err)
	}
	s2.Close()
}

// TestBelowMinDatabasesFailsStop: with min-databases 2 of 2, losing one
// fails the store: the Write gets an error wrapping store.ErrFailed, and
// so does every later one.
func TestBelowMinDatabasesFailsStop(t *testing.T) {
	set := newSet(t, All, 2, "sqlite", "sqlite")
	s := set.open(t)
	defer s.Close()
	writeN(t, s, 0, 3)
	set.faults[1].setDown(true)
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{msg(9)}}); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Write with one of two databases = %v, want store.ErrFailed", err)
	}
	set.faults[1].setDown(false)
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{msg(10)}}); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("later Write = %v, want store.ErrFailed", err)
	}
}

// TestPolicies: a Write under all waits for the slow database; under
// first it returns on the fast one. Database 1's applier is held.
func TestPolicies(t *testing.T) {
	for _, p := range []Policy{All, Majority, First} {
		t.Run(p.String(), func(t *testing.T) {
			set := newSet(t, p, 1, "sqlite", "sqlite")
			gate := make(chan struct{})
			entered := make(chan struct{}, 100)
			inner := set.opts.Databases[1].Open
			set.opts.Databases[1].Open = func(ctx2 context.Context) (DB, error) {
				db, err := inner(ctx2)
				if err != nil {
					return nil, err
				}
				return &gatedDB{DB: db, gate: gate, entered: entered}, nil
			}
			s := set.open(t)
			defer s.Close()
			done := make(chan error, 1)
			go func() { done <- s.Write(ctx, &store.Batch{Adds: []*store.Message{msg(1)}}) }()
			<-entered // database 1 is inside Apply, held
			if p == First {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				close(gate)
				return
			}
			select {
			case err := <-done:
				t.Fatalf("policy %s: Write returned (%v) while database 1 had not committed", p, err)
			default:
			}
			close(gate)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestServerKilledUnderLoad: two PostgreSQL servers, writers adding and
// acking; server b is killed mid-load (SIGKILL). Its database is
// disabled, the writers go on without an error, and once b is restarted
// it is resynchronised and enabled, holding exactly what a holds: every
// acknowledged add not acknowledged as consumed.
func TestServerKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a database server")
	}
	set := newSet(t, All, 1, "postgres", "postgres")
	srvB := poolB.Server(t, dbserver.Postgres)
	s := set.open(t)
	defer s.Close()
	var (
		mu    sync.Mutex
		all   []*store.Message
		acked = map[uint64]bool{}
		wg    sync.WaitGroup
		errs  = make(chan error, 8)
		stop  = make(chan struct{})
		count atomic.Int64
		// paced: once the server is back, each writer waits between writes,
		// so the load is bounded and the returning database can catch up on
		// a loaded machine (unpaced, 8 writers outran its resync for minutes).
		paced atomic.Bool
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []*store.Message
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if paced.Load() {
					time.Sleep(20 * time.Millisecond)
				}
				m := msg(1000*w + i)
				b := &store.Batch{Adds: []*store.Message{m}}
				if i%3 == 2 {
					b.Acks = []uint64{mine[0].Seq}
				}
				if err := s.Write(ctx, b); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				count.Add(1)
				mu.Lock()
				all = append(all, m)
				if len(b.Acks) > 0 {
					acked[mine[0].Seq] = true
					mine = mine[1:]
				}
				mu.Unlock()
				mine = append(mine, m)
			}
		}(w)
	}
	waitFor(t, "load", func() bool { return count.Load() > 200 })
	if err := srvB.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "database 1 disabled", func() bool { return state(s, 1) == Disabled })
	before := count.Load()
	waitFor(t, "writes with one database", func() bool { return count.Load() > before+200 })
	paced.Store(true)
	if err := srvB.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "database 1 enabled", func() bool { return state(s, 1) == Enabled })
	before = count.Load()
	waitFor(t, "writes with both again", func() bool { return count.Load() > before+100 })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.Stats()["db_1_failures_total"] < 1 || s.Stats()["db_1_resyncs_total"] < 1 {
		t.Fatalf("stats %v: database 1 never failed or was never resynchronised", s.Stats())
	}
	want := liveOf(all, acked)
	wantContent(t, set, 0, want)
	wantContent(t, set, 1, want)
}
