package replication

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/store"
)

// TestConnectReplicates: with min-replicas 1, a write returns only once
// the replica has it; the replica holds the master's messages with the
// master's seqs, acks included. Both ack modes.
func TestConnectReplicates(t *testing.T) {
	for _, mode := range []AckMode{Fsynced, Received} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCluster(t)
			a := c.node("a", []string{"b"}, func(o *Options) { o.Ack = mode })
			b := c.node("b", []string{"a"}, func(o *Options) { o.Ack = mode })
			st := master(t, a, 1)
			var msgs []*store.Message
			for i := 0; i < 50; i++ {
				msgs = append(msgs, mustSend(t, st, i))
				if got := b.Status().Received; got < a.Status().LSN {
					t.Fatalf("write %d returned with the replica at lsn %d of %d", i, got, a.Status().LSN)
				}
			}
			for _, m := range msgs[:20] {
				if err := st.Write(context.Background(), &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
					t.Fatal(err)
				}
			}
			caughtUp(t, a, b)
			want := contents(t, st)
			if got := replicaContents(t, b); got != want {
				t.Fatalf("replica holds\n%s\nmaster\n%s", got, want)
			}
			s := a.Status()
			if s.Role != "master" || s.InSync != 1 || len(s.Peers) != 1 || !s.Peers[0].InSync || s.Peers[0].ID != "b" {
				t.Fatalf("master status %+v", s)
			}
		})
	}
}

// TestNoReplicaNoAck: with min-replicas 1 and the replica away, a write
// is durable locally but not acknowledged; once the replica is back (it
// resyncs) the write is.
func TestNoReplicaNoAck(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"b"}, nil)
	st := master(t, a, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := send(ctx, st, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write without a replica: %v, want no acknowledgement (deadline)", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := send(context.Background(), st, 2)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write acknowledged without a replica: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	b := c.node("b", []string{"a"}, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	caughtUp(t, a, b)
	if got, want := replicaContents(t, b), contents(t, st); got != want {
		t.Fatalf("replica %s, master %s", got, want)
	}
}

// TestDisconnectResync: a partition stops acknowledgements (the replica
// is dropped after the timeout); healed, the replica resyncs (sealed
// segments' live messages, then the tail) and writes go on, and the
// writes that waited meanwhile are acknowledged.
func TestDisconnectResync(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"b"}, nil)
	b := c.node("b", []string{"a"}, nil)
	st := master(t, a, 1)
	var msgs []*store.Message
	for i := 0; i < 300; i++ { // several 64 KiB segments
		msgs = append(msgs, mustSend(t, st, i))
	}
	for _, m := range msgs[:150] {
		if err := st.Write(context.Background(), &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
			t.Fatal(err)
		}
	}
	c.mem.Cut("a", "b")
	waitFor(t, "the replica dropped", func() bool { return a.Status().InSync == 0 })
	done := make(chan error, 1)
	go func() {
		_, err := send(context.Background(), st, 1000)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write acknowledged across a partition: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	c.mem.Heal("a", "b")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustSend(t, st, 1001)
	caughtUp(t, a, b)
	if got, want := replicaContents(t, b), contents(t, st); got != want {
		t.Fatalf("after resync the replica holds\n%s\nthe master\n%s", got, want)
	}
}

// fakeReplica accepts the master's connection on addr and hands it to fn
// after the welcome.
func fakeReplica(t *testing.T, c *cluster, addr string, fn func(conn net.Conn, fr *frameReader, w *connWriter)) {
	fakeReplicaHello(t, c, addr, func(conn net.Conn, fr *frameReader, w *connWriter, h hello) {
		w.send(typeWelcome, welcome{OK: true, Epoch: h.Epoch, ID: addr}.encode())
		fn(conn, fr, w)
	})
}

// fakeReplicaHello accepts the master's connection on addr and hands it
// to fn after the hello.
func fakeReplicaHello(t *testing.T, c *cluster, addr string, fn func(conn net.Conn, fr *frameReader, w *connWriter, h hello)) {
	ln, err := c.mem.From(addr).Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				fr := newFrameReader(conn)
				typ, p, err := fr.next()
				if err != nil || typ != typeHello {
					return
				}
				h, _ := decodeHello(p)
				fn(conn, fr, &connWriter{c: conn, timeout: time.Minute}, h)
			}()
		}
	}()
}

// readSnapshot reads the snapshot and returns its LSN.
func readSnapshot(fr *frameReader) (uint64, error) {
	for {
		typ, p, err := fr.next()
		if err != nil {
			return 0, err
		}
		if typ != typeSnapshot {
			continue
		}
		s, err := decodeSnapshot(p)
		if err != nil || s.Final {
			return s.LSN, err
		}
	}
}

// TestLyingReplica: a replica that acknowledges a position it was never
// sent is dropped and never counted: the write is not acknowledged.
func TestLyingReplica(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"liar"}, nil)
	var mu sync.Mutex
	lies, conns := 0, 0
	fakeReplica(t, c, "liar", func(conn net.Conn, fr *frameReader, w *connWriter) {
		lsn, err := readSnapshot(fr)
		if err != nil {
			return
		}
		mu.Lock()
		conns++
		first := conns == 1
		mu.Unlock()
		if !first {
			lsn += 1000 // later resyncs: lies from the start
		}
		w.send(typeAck, encodeLSN(lsn)) // honest the first time: in sync
		for {
			typ, p, err := fr.next()
			if err != nil {
				return
			}
			if typ == typeGroup {
				g, _ := decodeGroup(p)
				mu.Lock()
				lies++
				mu.Unlock()
				w.send(typeAck, encodeLSN(g.First+1000)) // far ahead
			}
		}
	})
	st := master(t, a, 1)
	waitFor(t, "the liar in sync", func() bool { return a.Status().InSync == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := send(ctx, st, 1); err == nil {
		t.Fatal("a write was acknowledged on a lying replica's word")
	}
	mu.Lock()
	defer mu.Unlock()
	if lies == 0 || conns < 2 {
		t.Fatal("the liar never got a group: the test proves nothing")
	}
}

// TestSlowReplica: a replica that stops reading is dropped once MaxLag
// bytes wait for it; with min-replicas 0 the master goes on, and the
// status shows the replica out of sync.
func TestSlowReplica(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"slow"}, func(o *Options) { o.MinReplicas, o.MaxLag = 0, 32<<10 })
	stalled := make(chan struct{})
	var once sync.Once
	fakeReplica(t, c, "slow", func(conn net.Conn, fr *frameReader, w *connWriter) {
		lsn, err := readSnapshot(fr)
		if err != nil {
			return
		}
		w.send(typeAck, encodeLSN(lsn))
		once.Do(func() { close(stalled) })
		select {} // never reads again; the master closes the pipe
	})
	st := master(t, a, 1)
	<-stalled
	waitFor(t, "the slow replica in sync", func() bool { return a.Status().InSync == 1 })
	for i := 0; i < 400; i++ {
		mustSend(t, st, i) // min-replicas 0: never waits for the replica
	}
	waitFor(t, "the slow replica dropped", func() bool {
		s := a.Status()
		return s.InSync == 0 && !s.Peers[0].Connected
	})
}

// TestExMasterDiscardsUnreplicated: a master with min-replicas 0 writes
// while its replica is away (acknowledged, but on one copy), then dies;
// the replica takes over with the next epoch; the ex-master, restarted,
// becomes its replica and its unreplicated records are gone (the loss an
// asynchronous pair measures), while the new master's are there.
func TestExMasterDiscardsUnreplicated(t *testing.T) {
	c := newCluster(t)
	zero := func(o *Options) { o.MinReplicas = 0 }
	a := c.node("a", []string{"b"}, zero)
	b := c.node("b", []string{"a"}, zero)
	st := master(t, a, 1)
	mustSend(t, st, 1)
	caughtUp(t, a, b)
	c.mem.Cut("a", "b")
	waitFor(t, "b dropped", func() bool { return a.Status().InSync == 0 })
	lost := mustSend(t, st, 2) // acknowledged on a alone
	st.Close()
	a.Close()
	bst := master(t, b, 2)
	kept := mustSend(t, bst, 3)
	c.mem.Heal("a", "b")
	a2 := c.node("a", []string{"b"}, zero)
	caughtUp(t, b, a2)
	if p := b.Status().Peers[0]; p.Resync != "full" {
		t.Fatalf("the returning ex-master rejoined by %q: it must be copied whole (it dropped its position as master)", p.Resync)
	}
	got := replicaContents(t, a2)
	if got != contents(t, bst) {
		t.Fatalf("returning ex-master holds %s, the master %s", got, contents(t, bst))
	}
	if want := "m3"; !strings.Contains(got, want) || strings.Contains(got, string(lost.Body)) {
		t.Fatalf("returning ex-master holds %s: want %s (seq %d) and not %s", got, want, kept.Seq, lost.Body)
	}
	if a2.Epoch() != 2 {
		t.Fatalf("returning ex-master knows epoch %d, want 2", a2.Epoch())
	}
}

// TestOlderMasterRefused: a replica that knows epoch 2 refuses a master
// of epoch 1, which learns it is stale: fenced, its lock lost.
func TestOlderMasterRefused(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"b"}, nil)
	b := c.node("b", []string{"a"}, nil)
	b.mu.Lock()
	b.setEpochLocked(2)
	b.mu.Unlock()
	lock := NewPeerLock(a, time.Second)
	st := master(t, a, 1)
	select {
	case <-lock.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the stale master's lock was not lost")
	}
	if _, err := send(context.Background(), st, 1); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale master's write: %v, want ErrFenced", err)
	}
}

// TestPeerLockPartition: without a witness a partition makes two masters
// (the split-brain risk); with min-replicas 1 neither acknowledges; when
// they meet, the older epoch's lock is lost.
func TestPeerLockPartition(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"b"}, nil)
	b := c.node("b", []string{"a"}, nil)
	la, lb := NewPeerLock(a, 300*time.Millisecond), NewPeerLock(b, 300*time.Millisecond)
	ea, err := la.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Open(context.Background())
	defer sa.Close()
	mustSend(t, sa, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bDone := make(chan int64, 1)
	go func() {
		e, _ := lb.Acquire(ctx)
		bDone <- e
	}()
	select {
	case <-bDone:
		t.Fatal("b took over while a was master and reachable")
	case <-time.After(time.Second):
	}
	c.mem.Cut("a", "b")
	eb := <-bDone
	if eb <= ea {
		t.Fatalf("b took epoch %d, a had %d", eb, ea)
	}
	sb, _ := b.Open(context.Background())
	defer sb.Close()
	for _, st := range []store.Store{sa, sb} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := send(ctx, st, 2)
		cancel()
		if err == nil {
			t.Fatal("a master acknowledged without its replica during the partition")
		}
	}
	c.mem.Heal("a", "b")
	select {
	case <-la.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the older master's lock was not lost after the heal")
	}
	select {
	case <-lb.Lost():
		t.Fatal("the newer master's lock was lost")
	default:
	}
}

// witnessPair starts nodes a and b, peers of each other, and a witness
// "w" (TTL 600ms) granting their locks (renewed every 100ms).
func witnessPair(t *testing.T) (c *cluster, w *Witness, a, b *Node, la, lb *WitnessLock) {
	t.Helper()
	c = newCluster(t)
	w = NewWitness(600*time.Millisecond, t.Logf)
	ln, err := c.mem.From("w").Listen("w")
	if err != nil {
		t.Fatal(err)
	}
	go w.Serve(ln)
	t.Cleanup(func() { ln.Close() })
	a = c.node("a", []string{"b"}, nil)
	b = c.node("b", []string{"a"}, nil)
	to := role.TermOptions{Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond}
	return c, w, a, b, NewWitnessLock(a, "w", to), NewWitnessLock(b, "w", to)
}

// TestWitnessPartition: with a witness, the side cut off from it stops
// being master (Held false) before the other side is granted the next
// epoch: never two masters acknowledging.
func TestWitnessPartition(t *testing.T) {
	c, w, a, b, la, lb := witnessPair(t)
	if _, err := la.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Open(context.Background())
	defer sa.Close()
	mustSend(t, sa, 1)
	caughtUp(t, a, b)
	waitFor(t, "the witness told b is in sync", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.inSync) == 1 && w.inSync[0] == "b"
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bDone := make(chan error, 1)
	go func() {
		_, err := lb.Acquire(ctx)
		bDone <- err
	}()
	c.mem.Cut("a", "b")
	c.mem.Cut("a", "w")
	var aHeldAfterB bool
	select {
	case err := <-bDone:
		aHeldAfterB = la.Held()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("b never took over")
	}
	if aHeldAfterB {
		t.Fatal("a still held its grant when b was granted the next epoch")
	}
	if lb.Epoch() <= la.Epoch() {
		t.Fatalf("b's epoch %d, a's %d", lb.Epoch(), la.Epoch())
	}
}

// TestWitnessRefusesStaleCopy: once the master reported b in sync and
// then dropped it (reported again without it), b is not granted the
// next epoch; nor is a node that never saw the last epoch.
func TestWitnessRefusesStaleCopy(t *testing.T) {
	w := NewWitness(50*time.Millisecond, t.Logf)
	if g := w.acquire(witnessReq{ID: "a"}); !g.OK || g.Epoch != 1 {
		t.Fatalf("first acquire: %+v", g)
	}
	if g := w.renew(witnessReq{ID: "a", Epoch: 1, InSync: []string{"b"}}); !g.OK {
		t.Fatalf("renew: %+v", g)
	}
	if g := w.acquire(witnessReq{ID: "b", Epoch: 1}); g.OK {
		t.Fatal("granted while held")
	}
	if g := w.renew(witnessReq{ID: "a", Epoch: 1, InSync: nil}); !g.OK {
		t.Fatalf("renew: %+v", g)
	}
	time.Sleep(100 * time.Millisecond)
	if g := w.acquire(witnessReq{ID: "b", Epoch: 1}); g.OK {
		t.Fatal("granted to a replica the master had dropped")
	}
	if g := w.acquire(witnessReq{ID: "c", Epoch: 0}); g.OK {
		t.Fatal("granted to a node that never saw epoch 1")
	}
	if g := w.acquire(witnessReq{ID: "a", Epoch: 1}); !g.OK || g.Epoch != 2 {
		t.Fatalf("the last holder's acquire: %+v", g)
	}
}

// TestWitnessTTLShorterRefused: a node refuses a witness whose grants
// last less than its own TTL (the witness could grant the next epoch
// while this master still acknowledges): Acquire fails with
// ErrWitnessTTL instead of making it master; an equal TTL is accepted.
func TestWitnessTTLShorterRefused(t *testing.T) {
	for _, wttl := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond} {
		c := newCluster(t)
		w := NewWitness(wttl, t.Logf)
		ln, err := c.mem.From("w").Listen("w")
		if err != nil {
			t.Fatal(err)
		}
		go w.Serve(ln)
		a := c.node("a", nil, nil)
		l := NewWitnessLock(a, "w", role.TermOptions{Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = l.Acquire(ctx)
		cancel()
		l.Release()
		ln.Close()
		if short := wttl < 600*time.Millisecond; short != errors.Is(err, ErrWitnessTTL) || !short && err != nil {
			t.Errorf("witness ttl %v, node ttl 600ms: Acquire %v", wttl, err)
		}
	}
}
