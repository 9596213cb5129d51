package replication

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/role/locktest"
	"github.com/lossbench/lossbench/broker/store"
)

// TestWitnessLockConformance runs role's lock suite (locktest) on the
// witness lock: each contender is a replicated node of one cluster, with
// the others as its peers, its lock granted by one witness (TTL the
// suite's). Cut partitions the contender from the witness and the other
// nodes, as losing its site does.
func TestWitnessLockConformance(t *testing.T) {
	locktest.Run(t, func(t *testing.T) locktest.Pool {
		c := newCluster(t)
		w := NewWitness(locktest.Timings.TTL, t.Logf)
		ln, err := c.mem.From("w").Listen("w")
		if err != nil {
			t.Fatal(err)
		}
		go w.Serve(ln)
		t.Cleanup(func() { ln.Close() })
		return &witnessLockPool{c: c, w: w, live: map[string]*Node{}, away: map[string]bool{}}
	})
}

// conformanceContenders are the names the suite gives its locks.
var conformanceContenders = []string{"a", "b"}

type witnessLockPool struct {
	c    *cluster
	w    *Witness
	mu   sync.Mutex
	live map[string]*Node // nodes not released
	away map[string]bool  // nodes cut off or paused
}

func (p *witnessLockPool) New(t *testing.T, owner string, o role.TermOptions) role.Lock {
	var peers []string
	for _, id := range conformanceContenders {
		if id != owner {
			peers = append(peers, id)
		}
	}
	tr := &witnessAskTransport{Transport: p.c.mem.From(owner)}
	n := p.c.node(owner, peers, func(opt *Options) {
		opt.Transport = tr
		opt.Logf = func(f string, a ...any) { t.Logf(owner+": "+f, a...) }
	})
	o.Logf = func(f string, a ...any) { t.Logf(owner+": "+f, a...) }
	l := &witnessBrokerLock{WitnessLock: NewWitnessLock(n, "w", o), p: p, n: n, tr: tr, done: make(chan struct{})}
	p.mu.Lock()
	p.live[owner] = n
	p.mu.Unlock()
	if clock, ok := o.Clock.(*locktest.Pausable); ok {
		go l.pauses(clock)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

func (p *witnessLockPool) Cut(t *testing.T, owner string) {
	p.setAway(owner, true)
	p.c.mem.Cut(owner, "w")
	for _, id := range conformanceContenders {
		if id != owner {
			p.c.mem.Cut(owner, id)
		}
	}
}

func (p *witnessLockPool) setAway(id string, away bool) {
	p.mu.Lock()
	p.away[id] = away
	p.mu.Unlock()
}

// witnessBrokerLock is the witness lock as refbroker uses it. Once master, the
// node opens its store (its master streams to the replicas) and, before
// Acquire returns, tells the witness which replicas are in sync (its
// first renewal would, but the suite may pause or cut it before its
// clock gets there, and the witness grants the next epoch only to a
// replica reported in sync). Release steps down: the store and the node
// close, as a stopping broker's do. While its clock is paused the node's
// links are cut, as a stopped process sends no heartbeat.
type witnessBrokerLock struct {
	*WitnessLock
	p  *witnessLockPool
	n  *Node
	tr *witnessAskTransport

	mu   sync.Mutex
	st   store.Store
	once sync.Once
	done chan struct{}
}

func (l *witnessBrokerLock) Acquire(ctx context.Context) (int64, error) {
	e, err := l.WitnessLock.Acquire(ctx)
	if err != nil {
		return e, err
	}
	st, err := l.n.Open(ctx)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for !l.othersInSync() {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("replicas %v not in sync with %s after 20s", l.others(), l.n.ID())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := l.renew(ctx, l.term.Options().Clock.Now()); err != nil {
		return 0, err
	}
	return e, nil
}

// others are the live conformanceContenders but this one, not cut off nor paused.
func (l *witnessBrokerLock) others() []string {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	var out []string
	for id := range l.p.live {
		if id != l.n.ID() && !l.p.away[id] {
			out = append(out, id)
		}
	}
	return out
}

func (l *witnessBrokerLock) othersInSync() bool {
	l.n.mu.Lock()
	m := l.n.m
	l.n.mu.Unlock()
	in := m.inSync()
	for _, id := range l.others() {
		if !slices.Contains(in, id) {
			return false
		}
	}
	return true
}

// pauses cuts the node's links while clock is paused and heals them when
// it resumes, until Release.
func (l *witnessBrokerLock) pauses(clock *locktest.Pausable) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	cut := false
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		if p := clock.Paused(); p != cut {
			cut = p
			l.p.setAway(l.n.ID(), cut)
			for _, id := range append([]string{"w"}, conformanceContenders...) {
				if id == l.n.ID() {
					continue
				}
				if cut {
					l.p.c.mem.Cut(l.n.ID(), id)
				} else {
					l.p.c.mem.Heal(l.n.ID(), id)
				}
			}
		}
	}
}

// Status is WitnessLock's, once it has waited for a request to the witness in flight to end, and for
// a grant the witness made to reach the lock (the node records the epoch
// durably first): the suite moves its clock in steps of real
// milliseconds, and a grant asked for at one step (the term counts from
// before the request) and begun several steps later would start its
// lease expired; the suite reads Status at every step.
func (l *witnessBrokerLock) Status() role.Status {
	deadline := time.Now().Add(5 * time.Second)
	for l.granting() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	return l.WitnessLock.Status()
}

// granting reports whether a request to the witness is in flight or the
// witness granted this node an epoch its lock has not taken yet.
func (l *witnessBrokerLock) granting() bool {
	if l.tr.asking() {
		return true
	}
	ws := l.p.w.Status()
	return ws.Holder == l.n.ID() && !ws.Free && int64(ws.Epoch) != l.WitnessLock.Epoch()
}

func (l *witnessBrokerLock) Release() error {
	err := l.WitnessLock.Release()
	l.once.Do(func() {
		close(l.done)
		l.p.mu.Lock()
		delete(l.p.live, l.n.ID())
		l.p.mu.Unlock()
		l.mu.Lock()
		if l.st != nil {
			l.st.Close()
		}
		l.mu.Unlock()
		l.n.Close()
	})
	return err
}

// witnessAskTransport counts a node's connections to the witness ("w") open:
// a WitnessLock holds one for each request.
type witnessAskTransport struct {
	Transport
	n atomic.Int32
}

func (a *witnessAskTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if addr != "w" {
		return a.Transport.Dial(ctx, addr)
	}
	a.n.Add(1)
	c, err := a.Transport.Dial(ctx, addr)
	if err != nil {
		a.n.Add(-1)
		return nil, err
	}
	return &witnessAskConn{Conn: c, a: a}, nil
}

func (a *witnessAskTransport) asking() bool { return a.n.Load() > 0 }

type witnessAskConn struct {
	net.Conn
	a    *witnessAskTransport
	once sync.Once
}

func (c *witnessAskConn) Close() error {
	c.once.Do(func() { c.a.n.Add(-1) })
	return c.Conn.Close()
}

// TestWitnessStandbyNamesItsMaster: a standby that its master reached
// before it asked the witness (so it never asks while the master streams
// to it) still names that master in its lock's status, as /readyz shows
// it: a standby that names no holder is one about to take over, and a
// harness waiting for it to be ready would wait for ever (the docker run
// of replicated-partition-witness did: "start b1: not ready after 1m0s").
func TestWitnessStandbyNamesItsMaster(t *testing.T) {
	_, _, a, b, la, lb := witnessPair(t)
	if _, err := la.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	sa, err := a.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	mustSend(t, sa, 1)
	caughtUp(t, a, b)
	if st := lb.Status(); st.Role != "standby" || st.Holder != "a" {
		t.Fatalf("b, a's replica, before asking the witness: status %+v, want standby held by a", st)
	}
	// Standing by while a streams: b does not ask the witness, and still
	// names a.
	ctx, cancel := context.WithCancel(context.Background())
	bDone := make(chan error, 1)
	go func() {
		_, err := lb.Acquire(ctx)
		bDone <- err
	}()
	mustSend(t, sa, 2)
	caughtUp(t, a, b)
	if st := lb.Status(); st.Role != "standby" || st.Holder != "a" {
		t.Fatalf("b, a's replica, standing by: status %+v, want standby held by a", st)
	}
	cancel()
	if err := <-bDone; err == nil {
		t.Fatal("b's Acquire returned no error after its context ended")
	}
	if st := la.Status(); st.Role != "master" || st.Holder != "a" {
		t.Fatalf("a: status %+v, want master held by a", st)
	}
}
