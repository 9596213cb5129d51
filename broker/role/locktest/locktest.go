// Package locktest is the conformance suite of role.Lock: every lock
// implementation runs Run. The locks run on a manual clock (Clock) that
// the suite advances in steps shorter than the margin, so expiry, a failed
// renewal, a pause and two contenders are checked against the lease
// arithmetic, not against the scheduler: at no step may two locks be Held.
package locktest

import (
	"context"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/role"
)

// Pool makes locks that contend for one shared resource (one database,
// one directory).
type Pool interface {
	// New returns a standby lock for owner with the timings o; Clock is
	// set. The pool releases it when the test ends.
	New(t *testing.T, owner string, o role.TermOptions) role.Lock
	// Cut makes every later renewal and takeover of owner's lock fail, as
	// a broker cut off from the storage or database sees it, while the
	// other contenders still reach it.
	Cut(t *testing.T, owner string)
}

// Timings the suite runs with; Step is how far the clock moves at a time.
var (
	Timings = role.TermOptions{Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond, Poll: 2 * time.Millisecond}
	Step    = 50 * time.Millisecond
)

// wait bounds every wait for a background loop to notice a clock step
// (in real time, and only reached on failure).
const wait = 20 * time.Second

// Run runs the suite on locks from newPool, a fresh shared resource per
// test.
func Run(t *testing.T, newPool func(t *testing.T) Pool) {
	t.Run("TwoContenders", func(t *testing.T) { testTwoContenders(t, newPool(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newPool(t)) })
	t.Run("FailedRenewal", func(t *testing.T) { testFailedRenewal(t, newPool(t)) })
	t.Run("Pause", func(t *testing.T) { testPause(t, newPool(t)) })
	t.Run("ReleaseStandby", func(t *testing.T) { testReleaseStandby(t, newPool(t)) })
}

// contender is one broker's lock and its view of the clock.
type contender struct {
	name  string
	l     role.Lock
	clock *Pausable
	cut   bool // Pool.Cut: its renewals fail
}

type world struct {
	t     *testing.T
	pool  Pool
	clock *Clock
	cs    []*contender
}

func newWorld(t *testing.T, pool Pool, names ...string) *world {
	w := &world{t: t, pool: pool, clock: NewClock()}
	for _, n := range names {
		c := &contender{name: n, clock: NewPausable(w.clock)}
		o := Timings
		o.Clock, o.Logf = c.clock, t.Logf
		c.l = pool.New(t, n, o)
		w.cs = append(w.cs, c)
	}
	return w
}

// acquired is the outcome of an Acquire run in the background.
type acquired struct {
	epoch int64
	err   error
}

func acquireAsync(ctx context.Context, l role.Lock) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		e, err := l.Acquire(ctx)
		ch <- acquired{e, err}
	}()
	return ch
}

// eventually waits for cond in real time; the background loops poll
// every Timings.Poll.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("after %v: %s", wait, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// acquire makes c master at once (nobody holds the lock).
func (w *world) acquire(c *contender) int64 {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	e, err := c.l.Acquire(ctx)
	if err != nil {
		w.t.Fatalf("%s: Acquire on a free lock: %v", c.name, err)
	}
	if e < 1 || !c.l.Held() || c.l.Epoch() != e {
		w.t.Fatalf("%s: Acquire = epoch %d, Held %v, Epoch %d", c.name, e, c.l.Held(), c.l.Epoch())
	}
	return e
}

// step advances the clock by Step, lets every live master renew if its
// renewal is due, and checks that at most one lock is Held. It gives the
// standbys a couple of polls of real time to look at the lock: a standby
// that missed a step takes over later on the clock, never earlier.
func (w *world) step() {
	w.t.Helper()
	w.clock.Advance(Step)
	time.Sleep(2 * Timings.Poll)
	due := Timings.TTL - Timings.Margin - Timings.Renew
	for _, c := range w.cs {
		st := c.l.Status()
		if st.Role == "master" && st.ValidFor <= due && c.renews() {
			w.eventually(c.name+" renews", func() bool {
				st := c.l.Status()
				return st.Role != "master" || st.ValidFor > due
			})
		}
	}
	w.oneHeld()
}

// renews reports whether c can renew: not cut, not paused.
func (c *contender) renews() bool { return !c.cut && !c.isPaused() }

func (c *contender) isPaused() bool {
	c.clock.mu.Lock()
	defer c.clock.mu.Unlock()
	return c.clock.paused
}

func (w *world) oneHeld() {
	w.t.Helper()
	var held []string
	for _, c := range w.cs {
		// A paused broker runs nothing: what its stopped clock says
		// counts once it resumes.
		if !c.isPaused() && c.l.Held() {
			held = append(held, c.name)
		}
	}
	if len(held) > 1 {
		w.t.Fatalf("two masters at %v: %v", w.clock.Now(), held)
	}
}

// waitLost waits for c's Lost to close.
func (w *world) waitLost(c *contender, what string) {
	w.t.Helper()
	w.eventually(what, func() bool {
		select {
		case <-c.l.Lost():
			return true
		default:
			return false
		}
	})
}

// received takes what ch delivered, if it did.
func received(ch <-chan acquired, r *acquired) bool {
	select {
	case *r = <-ch:
		return true
	default:
		return false
	}
}

// notYet fails if ch already delivered.
func notYet(t *testing.T, who string, ch <-chan acquired) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s acquired (epoch %d, %v) while the master renews", who, r.epoch, r.err)
	default:
	}
}

// testTwoContenders: the standby waits while the master renews, for
// three leases' worth of clock; it takes over at once, with the next
// epoch, when the master releases.
func testTwoContenders(t *testing.T, pool Pool) {
	w := newWorld(t, pool, "a", "b")
	a, b := w.cs[0], w.cs[1]
	e := w.acquire(a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rb := acquireAsync(ctx, b.l)
	w.eventually("b stands by behind a", func() bool {
		st := b.l.Status()
		return st.Role == "standby" && st.Holder == "a"
	})
	for i := 0; i < int(3*Timings.TTL/Step); i++ {
		w.step()
		notYet(t, "b", rb)
	}
	if !a.l.Held() || b.l.Held() {
		t.Fatalf("held: master %v, standby %v", a.l.Held(), b.l.Held())
	}
	if err := a.l.Release(); err != nil {
		t.Fatal(err)
	}
	if a.l.Held() {
		t.Fatal("held after Release")
	}
	select {
	case <-a.l.Lost():
	default:
		t.Fatal("Lost not closed by Release")
	}
	var r acquired
	w.eventually("b takes the released lock without the clock moving", func() bool { return received(rb, &r) })
	if r.err != nil || r.epoch != e+1 {
		t.Fatalf("takeover after release = %d, %v; want epoch %d", r.epoch, r.err, e+1)
	}
	if st := b.l.Status(); st.Role != "master" || st.Epoch != e+1 || st.Owner != "b" {
		t.Fatalf("new master's status %+v", st)
	}
}

// testExpiry: the master stops renewing without releasing (killed); it is
// no longer Held before the standby can take over, and the standby takes
// over once the lease has expired, not before.
func testExpiry(t *testing.T, pool Pool) {
	w := newWorld(t, pool, "a", "b")
	a, b := w.cs[0], w.cs[1]
	e := w.acquire(a)
	rb := acquireAsync(context.Background(), b.l)
	for i := 0; i < 4; i++ {
		w.step()
	}
	a.cut = true
	pool.Cut(t, "a")
	killed, realKilled := w.clock.Now(), time.Now()
	var r acquired
	for !received(rb, &r) {
		w.step()
		if time.Since(realKilled) > wait {
			t.Fatalf("no takeover %v after the master stopped renewing (%v on the clock)", wait, w.clock.Now().Sub(killed))
		}
	}
	took := w.clock.Now()
	if r.err != nil || r.epoch != e+1 {
		t.Fatalf("takeover = %d, %v; want epoch %d", r.epoch, r.err, e+1)
	}
	if took.Sub(killed) < Timings.TTL-Timings.Renew {
		t.Fatalf("standby took over %v after the master's last chance to renew, before the lease (%v) could expire", took.Sub(killed), Timings.TTL)
	}
	if a.l.Held() {
		t.Fatal("the cut master is still Held after the takeover")
	}
	w.waitLost(a, "the cut master's Lost closes")
	if st := a.l.Status(); st.Role != "lost" || st.Reason == "" {
		t.Fatalf("cut master's status %+v", st)
	}
	t.Logf("took over %v after the cut (TTL %v)", took.Sub(killed), Timings.TTL)
}

// testFailedRenewal: a master whose renewals fail and that nobody takes
// over from still stops being master when its lease runs out (minus the
// margin): it cannot know that no standby took over.
func testFailedRenewal(t *testing.T, pool Pool) {
	w := newWorld(t, pool, "a")
	a := w.cs[0]
	w.acquire(a)
	w.step()
	a.cut = true
	pool.Cut(t, "a")
	cut := w.clock.Now()
	for a.l.Held() {
		w.step()
		if w.clock.Now().Sub(cut) > Timings.TTL {
			t.Fatalf("a master that cannot renew is still Held %v later (TTL %v)", w.clock.Now().Sub(cut), Timings.TTL)
		}
	}
	if over := w.clock.Now().Sub(cut); over > Timings.TTL-Timings.Margin+Step {
		t.Fatalf("held %v after its renewals began to fail; the lease ends after %v minus the margin %v", over, Timings.TTL, Timings.Margin)
	}
	w.waitLost(a, "Lost closes")
}

// testPause: a master paused past its lease (its clock stands still, it
// does nothing) is taken over; on resuming, it is not Held at once and
// its Lost closes, and the new master keeps the lock.
func testPause(t *testing.T, pool Pool) {
	w := newWorld(t, pool, "a", "b")
	a, b := w.cs[0], w.cs[1]
	e := w.acquire(a)
	rb := acquireAsync(context.Background(), b.l)
	w.step()
	a.clock.Pause()
	var r acquired
	for !received(rb, &r) {
		w.step()
	}
	if r.err != nil || r.epoch != e+1 {
		t.Fatalf("takeover from a paused master = %d, %v; want epoch %d", r.epoch, r.err, e+1)
	}
	a.clock.Resume()
	if a.l.Held() {
		t.Fatal("the resumed ex-master considers itself master")
	}
	w.waitLost(a, "the resumed ex-master's Lost closes")
	for i := 0; i < int(2*Timings.TTL/Step); i++ {
		w.step()
	}
	if !b.l.Held() || b.l.Epoch() != e+1 {
		t.Fatalf("new master: Held %v epoch %d", b.l.Held(), b.l.Epoch())
	}
}

// testReleaseStandby: releasing a lock that stands by ends its Acquire
// with an error, without it ever becoming master.
func testReleaseStandby(t *testing.T, pool Pool) {
	w := newWorld(t, pool, "a", "b")
	a, b := w.cs[0], w.cs[1]
	w.acquire(a)
	rb := acquireAsync(context.Background(), b.l)
	w.eventually("b stands by", func() bool { return b.l.Status().Holder == "a" })
	if err := b.l.Release(); err != nil {
		t.Fatalf("Release of a standby: %v", err)
	}
	var r acquired
	w.eventually("a released standby's Acquire returns", func() bool { return received(rb, &r) })
	if r.err == nil {
		t.Fatalf("released standby acquired epoch %d", r.epoch)
	}
	if !a.l.Held() || a.l.Status().Role != "master" {
		t.Fatalf("master lost its lock to a released standby: %+v", a.l.Status())
	}
}
