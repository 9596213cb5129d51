package lease_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

var ctx = context.Background()

// start returns when, on its own clock, l became master: its last
// renewal, read right after Acquire, minus the lease.
func start(l *lease.Lease) time.Time { return l.ValidUntil().Add(-(testOpts.TTL - testOpts.Margin)) }

// TestExactlyOneMaster: two contenders, one master; the other waits while
// the master renews, and takes over at once when it releases.
func TestExactlyOneMaster(t *testing.T) {
	forEach(t, func(t *testing.T, kind string) {
		o := freshDB(t, kind)
		a, b := newContender(t, o, "a"), newContender(t, o, "b")
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ra, rb := acquireAsync(cctx, a.l), acquireAsync(cctx, b.l)
		var win, lose *contender
		var waiting <-chan acquired
		var got acquired
		select {
		case got = <-ra:
			win, lose, waiting = a, b, rb
		case got = <-rb:
			win, lose, waiting = b, a, ra
		case <-time.After(10 * time.Second):
			t.Fatal("nobody acquired the lease")
		}
		if got.err != nil || got.epoch != 1 {
			t.Fatalf("first Acquire = %d, %v; want epoch 1", got.epoch, got.err)
		}
		select {
		case r := <-waiting:
			t.Fatalf("second contender acquired too (epoch %d, %v) while the master renews", r.epoch, r.err)
		case <-time.After(3 * testOpts.TTL):
		}
		if !win.l.Held() || lose.l.Held() {
			t.Fatalf("held: winner %v, loser %v", win.l.Held(), lose.l.Held())
		}
		if st := lose.l.Status(); st.Role != "standby" || st.Holder != win.l.Status().Owner {
			t.Fatalf("standby status %+v", st)
		}
		if err := win.l.Release(); err != nil {
			t.Fatal(err)
		}
		if win.l.Held() {
			t.Fatal("held after Release")
		}
		select {
		case r := <-waiting:
			if r.err != nil || r.epoch != 2 {
				t.Fatalf("takeover after release = %d, %v; want epoch 2", r.epoch, r.err)
			}
		case <-time.After(testOpts.TTL):
			t.Fatal("standby did not take a released lease within the TTL")
		}
	})
}

// TestMasterKilled: the master stops renewing (its database handle is
// closed, as when its process dies); it considers itself lost before the
// standby takes over, and the standby takes over after the lease.
func TestMasterKilled(t *testing.T) {
	forEach(t, func(t *testing.T, kind string) {
		o := freshDB(t, kind)
		a, b := newContender(t, o, "a"), newContender(t, o, "b")
		if _, err := a.l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		rb := acquireAsync(ctx, b.l)
		time.Sleep(2 * testOpts.Renew)
		killed := time.Now()
		a.db.Close()
		var lostAt time.Time
		select {
		case <-a.l.Lost():
			lostAt = time.Now()
		case <-time.After(5 * testOpts.TTL):
			t.Fatal("a killed master never noticed it lost the lease")
		}
		r := <-rb
		if r.err != nil || r.epoch != 2 {
			t.Fatalf("takeover = %d, %v; want epoch 2", r.epoch, r.err)
		}
		if !lostAt.Before(r.at) || !a.l.ValidUntil().Before(start(b.l)) {
			t.Fatalf("overlap: old master lost at %v, valid until %v; new master from %v (Acquire returned %v)",
				lostAt, a.l.ValidUntil(), start(b.l), r.at)
		}
		if wait := r.at.Sub(killed); wait < testOpts.TTL-testOpts.Renew {
			t.Fatalf("standby took over %v after the kill, before the lease could expire", wait)
		}
		t.Logf("killed master lost %v after the kill; standby master %v after", lostAt.Sub(killed), r.at.Sub(killed))
	})
}

// TestPausedMasterFenced: a master paused past its lease (its clock stops,
// it does nothing) wakes up after the takeover: its commits are refused by
// the epoch check in the database before it even looks at its clock, and
// once it does it knows it lost the lease; nothing it acknowledged is lost.
func TestPausedMasterFenced(t *testing.T) {
	forEach(t, func(t *testing.T, kind string) {
		o := freshDB(t, kind)
		a, b := newContender(t, o, "a"), newContender(t, o, "b")
		if _, err := a.l.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		sa := openFenced(t, o, a.l)
		m1 := &store.Message{Queue: "/queue/p", Body: []byte("acked by a")}
		if err := sa.Write(ctx, &store.Batch{Adds: []*store.Message{m1}}); err != nil {
			t.Fatal(err)
		}
		rb := acquireAsync(ctx, b.l)
		a.clock.Pause()
		r := <-rb
		if r.err != nil || r.epoch != 2 {
			t.Fatalf("takeover = %d, %v", r.epoch, r.err)
		}
		if !a.l.ValidUntil().Before(start(b.l)) {
			t.Fatalf("paused master valid until %v, new master from %v", a.l.ValidUntil(), start(b.l))
		}
		// Still paused: its clock says it is master, the database says no.
		if !a.l.Held() {
			t.Fatal("paused clock moved")
		}
		err := sa.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/p", Body: []byte("stale")}}})
		if !errors.Is(err, lease.ErrFenced) {
			t.Fatalf("write of a paused ex-master = %v, want ErrFenced", err)
		}
		a.clock.Resume()
		if a.l.Held() {
			t.Fatal("resumed ex-master still considers itself master")
		}
		select {
		case <-a.l.Lost():
		case <-time.After(testOpts.TTL):
			t.Fatal("Lost not closed after resuming")
		}
		sb := openFenced(t, o, b.l)
		var got []string
		if err := sb.Recover(ctx, func(m *store.Message) error { got = append(got, string(m.Body)); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != "acked by a" {
			t.Fatalf("new master recovered %q, want only a's acknowledged message", got)
		}
		if err := sb.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/p", Body: []byte("b")}}}); err != nil {
			t.Fatalf("new master's write: %v", err)
		}
	})
}

// openFenced opens a sqlstore whose commits carry l's epoch, guarded by l.
func openFenced(tb testing.TB, o sqlstore.Options, l *lease.Lease) *lease.Guarded {
	tb.Helper()
	o.Fence = l.Fence
	s, err := sqlstore.Open(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return lease.Guard(s, l)
}

// ack is one acknowledged write in the history.
type ack struct {
	epoch int64
	seq   uint64
	at    time.Time
}

// TestNoTwoMastersHistory: three brokers contend for the lease over
// several terms; each master writes through a fenced, guarded store and
// its term ends by a release, a kill or a pause. From the history of
// (epoch, time) of every acknowledged write and of every takeover: no
// write of an epoch is acknowledged after a later epoch began, epochs only
// grow, and every acknowledged message is in the database at the end.
func TestNoTwoMastersHistory(t *testing.T) {
	forEach(t, func(t *testing.T, kind string) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		o := freshDB(t, kind)
		const terms = 6
		var (
			mu      sync.Mutex
			acks    []ack
			starts  = map[int64]time.Time{}
			endings []string
			wg      sync.WaitGroup
		)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for c := 0; c < 3; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(c)))
				for round := 0; cctx.Err() == nil; round++ {
					ct := newContender(t, o, fmt.Sprintf("c%d.%d", c, round))
					epoch, err := ct.l.Acquire(cctx)
					if err != nil {
						return
					}
					mu.Lock()
					starts[epoch] = start(ct.l)
					if len(starts) >= terms {
						cancel()
					}
					mu.Unlock()
					how := term(t, ct, o, epoch, rng, func(a ack) {
						mu.Lock()
						acks = append(acks, a)
						mu.Unlock()
					})
					mu.Lock()
					endings = append(endings, fmt.Sprintf("%d:%s", epoch, how))
					mu.Unlock()
				}
			}(c)
		}
		wg.Wait()
		t.Logf("%d terms (%v), %d acknowledged writes", len(starts), endings, len(acks))
		sort.Slice(acks, func(i, j int) bool { return acks[i].at.Before(acks[j].at) })
		for i, a := range acks {
			if i > 0 && a.epoch < acks[i-1].epoch {
				t.Fatalf("epoch %d acknowledged at %v after epoch %d at %v", a.epoch, a.at, acks[i-1].epoch, acks[i-1].at)
			}
			for e, s := range starts {
				if e > a.epoch && !a.at.Before(s) {
					t.Fatalf("epoch %d acknowledged seq %d at %v, after epoch %d began at %v: two masters", a.epoch, a.seq, a.at, e, s)
				}
			}
		}
		s, err := sqlstore.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		have := map[uint64]bool{}
		if err := s.Recover(ctx, func(m *store.Message) error { have[m.Seq] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, a := range acks {
			if !have[a.seq] {
				t.Fatalf("acknowledged message %d (epoch %d) lost", a.seq, a.epoch)
			}
		}
		if len(acks) == 0 {
			t.Fatal("no writes acknowledged")
		}
	})
}

// term is one master's term: it writes for a while, then ends it a random
// way, and says which.
func term(t *testing.T, ct *contender, o sqlstore.Options, epoch int64, rng *rand.Rand, record func(ack)) string {
	o.Fence = ct.l.Fence
	s, err := sqlstore.Open(ctx, o)
	if err != nil {
		t.Errorf("epoch %d: open store: %v", epoch, err)
		ct.l.Release()
		return "open failed"
	}
	defer s.Close()
	g := lease.Guard(s, ct.l)
	writeOne := func(w store.Store) bool {
		m := &store.Message{Queue: "/queue/h", Body: []byte(fmt.Sprint(epoch))}
		if err := w.Write(ctx, &store.Batch{Adds: []*store.Message{m}}); err != nil {
			if !errors.Is(err, lease.ErrFenced) {
				t.Logf("epoch %d: write: %v", epoch, err)
			}
			return false
		}
		record(ack{epoch, m.Seq, time.Now()})
		return true
	}
	for deadline := time.Now().Add(time.Duration(100+rng.IntN(200)) * time.Millisecond); time.Now().Before(deadline); {
		if !writeOne(g) {
			return "fenced early"
		}
		time.Sleep(5 * time.Millisecond)
	}
	switch rng.IntN(3) {
	case 0:
		ct.l.Release()
		return "released"
	case 1: // killed: no more renewals, no release
		ct.db.Close()
		<-ct.l.Lost()
		return "killed"
	default: // paused past the lease, then wakes up mid-write
		ct.clock.Pause()
		time.Sleep(testOpts.TTL + 4*testOpts.Renew)
		stale := writeOne(s) // the commit's epoch check alone
		ct.clock.Resume()
		if writeOne(g) {
			t.Errorf("epoch %d: guarded write acknowledged after a pause past the lease", epoch)
		}
		<-ct.l.Lost()
		if stale {
			return "paused (no takeover yet)"
		}
		return "paused"
	}
}

// TestReleaseStandby: releasing a lease that stands by ends its Acquire
// without it ever becoming master.
func TestReleaseStandby(t *testing.T) {
	o := freshDB(t, "sqlite")
	a, b := newContender(t, o, "a"), newContender(t, o, "b")
	if _, err := a.l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	rb := acquireAsync(ctx, b.l)
	// b has seen a's lease once its status names a as the holder; under
	// load its first poll may come late, so wait for it rather than sleep.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(testOpts.Poll) {
		st := b.l.Status()
		if st.Role == "standby" && st.Holder == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby status %+v", st)
		}
	}
	b.l.Release()
	select {
	case r := <-rb:
		if r.err == nil {
			t.Fatalf("released standby acquired epoch %d", r.epoch)
		}
	case <-time.After(2 * testOpts.TTL):
		t.Fatal("Acquire of a released standby did not return")
	}
	if !a.l.Held() || a.l.Status().Role != "master" {
		t.Fatalf("master lost its lease to a released standby: %+v", a.l.Status())
	}
}
