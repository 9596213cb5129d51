package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/storetest"
	"github.com/lossbench/lossbench/chaos/dbserver"
)

var ctx = context.Background()

func TestConformance(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			opts := freshOptions(t, tg)
			return storetest.Harness{Durable: true, Open: func(t *testing.T) store.Store {
				return mustOpen(t, opts)
			}}
		})
	})
}

// TestGroupCommit checks that concurrent Writes share commits: 32 writers
// of 1-message batches make fewer commits than Writes.
func TestGroupCommit(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := mustOpen(t, freshOptions(t, tg))
		defer s.Close()
		const writers, each = 32, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					m := &store.Message{Queue: "/queue/g", Body: bytes.Repeat([]byte{'x'}, 1024)}
					if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{m}}); err != nil {
						errs <- err
						return
					}
					if err := s.Write(ctx, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st := s.Stats()
		t.Logf("writes %.0f, commits %.0f, avg %.2f, max %.0f writes per commit, commit %.2f ms avg",
			st["writes_total"], st["commits_total"], st["writes_per_commit_avg"], st["writes_per_commit_max"],
			1000*st["commit_seconds_total"]/st["commits_total"])
		if st["writes_total"] != 2*writers*each {
			t.Fatalf("writes_total %v, want %d", st["writes_total"], 2*writers*each)
		}
		if st["commits_total"] >= st["writes_total"] {
			t.Fatalf("%v commits for %v writes: no group commit", st["commits_total"], st["writes_total"])
		}
		if st["rows_inserted_total"] != writers*each || st["rows_deleted_total"] != writers*each || st["live_messages"] != 0 {
			t.Fatalf("stats %v", st)
		}
	})
}

// TestRecoverBodyBudget reopens a backlog larger than the body budget:
// Recover hands out the first bodies, then Size only, and Load reads the
// rest back.
func TestRecoverBodyBudget(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		opts := freshOptions(t, tg)
		s := mustOpen(t, opts)
		var want []*store.Message
		for i := 0; i < 40; i++ {
			m := &store.Message{Queue: "/queue/b", Body: bytes.Repeat([]byte{byte(i)}, 1000+i),
				Headers: []store.Header{{Key: "i", Value: fmt.Sprint(i)}}}
			want = append(want, m)
		}
		if err := s.Write(ctx, &store.Batch{Adds: want}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		opts.BodyBudget = 10_000
		s = mustOpen(t, opts)
		defer s.Close()
		var got []*store.Message
		if err := s.Recover(ctx, func(m *store.Message) error { got = append(got, m); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("recovered %d, want %d", len(got), len(want))
		}
		loaded, held := 0, 0
		for i, m := range got {
			if m.Seq != want[i].Seq || m.Size != len(want[i].Body) || m.Headers[0].Value != fmt.Sprint(i) {
				t.Fatalf("message %d: %+v", i, m)
			}
			if m.Body == nil {
				if held == 0 {
					t.Fatalf("message %d without body before any with one", i)
				}
				b, err := s.Load(ctx, m.Seq)
				if err != nil {
					t.Fatal(err)
				}
				m.Body = b
				loaded++
			} else {
				if loaded > 0 {
					t.Fatalf("message %d with body after one without", i)
				}
				held++
			}
			if !bytes.Equal(m.Body, want[i].Body) {
				t.Fatalf("message %d body differs", i)
			}
		}
		if held != 9 || loaded != 31 { // 9 bodies of 1000-1008 bytes fit in 10,000
			t.Fatalf("held %d bodies, loaded %d: budget not kept", held, loaded)
		}
	})
}

// TestMigrationIdempotent opens the same database several times: the
// schema is created once, recorded as version 1 once, and data survives.
// A database from a newer broker is refused.
func TestMigrationIdempotent(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		opts := freshOptions(t, tg)
		var last uint64
		for i := 0; i < 3; i++ {
			s := mustOpen(t, opts)
			m := &store.Message{Queue: "/queue/m", Body: []byte{byte(i)}}
			if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{m}}); err != nil {
				t.Fatal(err)
			}
			if m.Seq <= last {
				t.Fatalf("seq %d after %d", m.Seq, last)
			}
			last = m.Seq
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		db := rawDB(t, tg, opts)
		var rows, version int
		if err := db.QueryRow("SELECT COUNT(*), MAX(version) FROM lossbench_schema_version").Scan(&rows, &version); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || version != sqlstore.SchemaVersion {
			t.Fatalf("schema_version has %d rows, max %d; want 1 row, %d", rows, version, sqlstore.SchemaVersion)
		}
		for _, table := range []string{"lossbench_seq", "lossbench_lock"} {
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%s: %d rows, %v; want 1", table, n, err)
			}
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM lossbench_msgs").Scan(&n); err != nil || n != 3 {
			t.Fatalf("lossbench_msgs: %d rows, %v", n, err)
		}
		if _, err := db.Exec("INSERT INTO lossbench_schema_version (version) VALUES (99)"); err != nil {
			t.Fatal(err)
		}
		if s, err := sqlstore.Open(ctx, opts); err == nil {
			s.Close()
			t.Fatal("Open accepted a database of schema version 99")
		}
	})
}

func rawDB(t *testing.T, tg target, opts sqlstore.Options) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+opts.Path
	switch tg.kind {
	case dbserver.Postgres:
		driver, dsn = "pgx", opts.DSN
	case dbserver.MariaDB:
		driver, dsn = "mysql", opts.DSN
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestKilledDatabase kills the database server under load: Writes fail
// with store.ErrFailed, and after the server restarts every message whose
// Write returned nil is there, and every ack that returned nil stuck.
func TestKilledDatabase(t *testing.T) {
	for _, tg := range targets[1:] {
		t.Run(tg.name, func(t *testing.T) {
			srv := server(t, tg.kind)
			opts := freshOptions(t, tg)
			s := mustOpen(t, opts)
			defer s.Close()
			if err := s.Recover(ctx, func(*store.Message) error { return nil }); err != nil {
				t.Fatal(err)
			}
			const writers = 8
			var (
				mu        sync.Mutex
				committed = map[uint64]bool{} // seq -> acked too
				wg        sync.WaitGroup
				failures  = make(chan error, writers)
				progress  = make(chan struct{}, 1000)
			)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; ; i++ {
						m := &store.Message{Queue: "/queue/k", Body: []byte(fmt.Sprintf("w%d-%d", w, i))}
						if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{m}}); err != nil {
							failures <- err
							return
						}
						mu.Lock()
						committed[m.Seq] = false
						mu.Unlock()
						select {
						case progress <- struct{}{}:
						default:
						}
						if i%3 == 0 {
							if err := s.Write(ctx, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
								// The ack may have committed before the reply
								// was lost: either outcome is right.
								mu.Lock()
								delete(committed, m.Seq)
								mu.Unlock()
								failures <- err
								return
							}
							mu.Lock()
							committed[m.Seq] = true
							mu.Unlock()
						}
					}
				}(w)
			}
			for i := 0; i < 100; i++ { // let some commits through first
				<-progress
			}
			t0 := time.Now()
			if err := srv.Kill(); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed in %v", time.Since(t0))
			wg.Wait()
			t.Logf("writers failed after %v", time.Since(t0))
			close(failures)
			for err := range failures {
				if !errors.Is(err, store.ErrFailed) {
					t.Errorf("Write after the kill: %v, want store.ErrFailed", err)
				}
			}
			if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/k"}}}); !errors.Is(err, store.ErrFailed) {
				t.Errorf("Write on a failed store: %v, want store.ErrFailed", err)
			}
			if got := s.Stats()["failed"]; got != 1 {
				t.Errorf("stats failed = %v", got)
			}
			s.Close()

			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := srv.Restart(rctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("restarted after %v", time.Since(t0))
			s = mustOpen(t, opts)
			defer s.Close()
			recovered := map[uint64]bool{}
			if err := s.Recover(ctx, func(m *store.Message) error { recovered[m.Seq] = true; return nil }); err != nil {
				t.Fatal(err)
			}
			lost, zombies := 0, 0
			for seq, acked := range committed {
				switch {
				case !acked && !recovered[seq]:
					t.Errorf("message %d committed, not acked, not recovered", seq)
					lost++
				case acked && recovered[seq]:
					zombies++
				}
			}
			t.Logf("%d committed before the kill (%d recovered); lost %d, acked but back %d",
				len(committed), len(recovered), lost, zombies)
			if lost > 0 || zombies > 0 {
				t.Fatalf("lost %d committed messages, %d committed acks undone", lost, zombies)
			}
		})
	}
}

// TestOptions checks driver and DSN validation.
func TestOptions(t *testing.T) {
	for _, o := range []sqlstore.Options{
		{Driver: "oracle", DSN: "x"},
		{Driver: "postgres"},
		{Driver: "mysql"},
		{Driver: "sqlite"},
		{Driver: "sqlite", Path: "/tmp/a?b"},
		{Driver: "mysql", DSN: "not a dsn"},
	} {
		if s, err := sqlstore.Open(ctx, o); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

func TestName(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		s := mustOpen(t, freshOptions(t, tg))
		defer s.Close()
		want := map[string]string{"sqlite": "jdbc/sqlite", "postgres": "jdbc/postgres", "mariadb": "jdbc/mysql"}[tg.name]
		if s.Name() != want {
			t.Fatalf("Name %q, want %q", s.Name(), want)
		}
	})
}

// TestOpenShared: a store opened with OpenShared writes through WriteTx
// only: Write is refused with an error saying so (it has no writer), what
// a WriteTx transaction committed is recovered, and Close returns.
func TestOpenShared(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		opts := freshOptions(t, tg)
		s, err := sqlstore.OpenShared(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/q", Body: []byte("w")}}})
		if err == nil || !strings.Contains(err.Error(), "OpenShared") {
			t.Fatalf("Write on a shared store: %v", err)
		}
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := &store.Message{Seq: 7, Queue: "/queue/q", Body: []byte("x")}
		if err := s.WriteTx(ctx, tx, []*store.Message{m}, nil, 7); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var got []uint64
		if err := s.Recover(ctx, func(m *store.Message) error { got = append(got, m.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != 7 {
			t.Fatalf("recovered %v, want [7]", got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
