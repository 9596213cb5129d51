package role

import (
	"context"
	"sync"
	"time"
)

// Default lease timings (refbroker's --lease-renew, --lease-ttl and
// --lease-margin).
const (
	DefaultRenew  = time.Second
	DefaultTTL    = 5 * time.Second
	DefaultMargin = time.Second
)

// TermOptions are a lease's timings; the zero value is the default.
type TermOptions struct {
	// Renew is how often the holder renews (0: DefaultRenew).
	Renew time.Duration
	// TTL is how long a standby waits, after it last saw the lease
	// change, before it takes over (0: DefaultTTL).
	TTL time.Duration
	// Margin is how long before TTL runs out, counted from its last
	// renewal, the holder stops considering itself master (0:
	// DefaultMargin). It must be below TTL - Renew for renewals to keep
	// the lease.
	Margin time.Duration
	// Poll is how often the lease looks at its clock and, as standby, at
	// the lease (0: Renew/10, at least 5ms).
	Poll time.Duration
	// Clock is the lease's clock (nil: RealClock).
	Clock Clock
	// Logf receives renewal errors; nil is silent.
	Logf func(format string, args ...any)
}

// WithDefaults returns o with its zero fields set to the defaults.
func (o TermOptions) WithDefaults() TermOptions {
	if o.Renew <= 0 {
		o.Renew = DefaultRenew
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Margin <= 0 {
		o.Margin = DefaultMargin
	}
	if o.Poll <= 0 {
		o.Poll = max(o.Renew/10, 5*time.Millisecond)
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	return o
}

// RenewFunc renews a held lease; its write started at start (on the
// term's clock, read before the write). ctx ends when the lease would.
// taken reports that the lease is no longer this broker's; err is a
// renewal that failed but may be retried.
type RenewFunc func(ctx context.Context, start time.Time) (taken bool, err error)

// Term is one broker's term as master under a lease: the rule that a
// master stops considering itself master before its lease can expire, for
// every lease-based Lock. A Term counts its lease from the start of its
// last successful renewal (that write landed after the start, so every
// standby first saw it after the start and cannot take over before start
// + TTL) and ends it Margin early, on its own monotonic clock. A renewal
// that hangs does not hold the term up: it ends on the clock.
//
// A Term starts as standby, becomes master once (Begin) and ends once
// (Lose); a broker that wants to stand by again makes a new one.
type Term struct {
	o TermOptions

	mu         sync.Mutex
	state      int // standby, master, lost
	validUntil time.Time
	lastRenew  time.Time
	reason     string

	lost     chan struct{}
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	soon     chan struct{} // RenewSoon: renew at the next poll
}

const (
	standby = iota
	master
	lost
)

// NewTerm returns a standby term with the timings o.
func NewTerm(o TermOptions) *Term {
	return &Term{o: o.WithDefaults(), lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
		soon: make(chan struct{}, 1)}
}

// RenewSoon asks for a renewal at the next poll instead of after Renew:
// for a holder whose renewal carries news (a replica that caught up). A
// renewal in flight is followed by another.
func (t *Term) RenewSoon() {
	select {
	case t.soon <- struct{}{}:
	default:
	}
}

// Options returns the term's timings, defaults filled in.
func (t *Term) Options() TermOptions { return t.o }

// Begin makes the term master from start, the time read before the write
// that took the lease, and renews it with renew every Renew until it ends.
// It returns false, and does nothing, when the term already ended (the
// lock was released while acquiring).
func (t *Term) Begin(start time.Time, renew RenewFunc) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != standby {
		return false
	}
	t.state, t.lastRenew, t.validUntil = master, start, start.Add(t.o.TTL-t.o.Margin)
	go t.renewLoop(renew)
	return true
}

type renewResult struct {
	start time.Time
	taken bool
	err   error
}

// renewLoop keeps the lease while the term lasts.
func (t *Term) renewLoop(renew RenewFunc) {
	defer close(t.done)
	tick := time.NewTicker(t.o.Poll)
	defer tick.Stop()
	var (
		inFlight bool
		soon     bool               // RenewSoon was called since the last renewal began
		results                     = make(chan renewResult, 1)
		cancel   context.CancelFunc = func() {}
	)
	defer func() { cancel() }()
	for {
		select {
		case <-t.stop:
			return
		case r := <-results:
			inFlight = false
			cancel()
			switch {
			case r.taken:
				t.Lose("the lease was taken over")
				return
			case r.err != nil:
				if t.o.Logf != nil {
					t.o.Logf("lease: renew: %v", r.err)
				}
			default:
				t.mu.Lock()
				if t.state == master && r.start.After(t.lastRenew) {
					t.lastRenew, t.validUntil = r.start, r.start.Add(t.o.TTL-t.o.Margin)
				}
				t.mu.Unlock()
			}
		case <-t.soon:
			soon = true
		case <-tick.C:
		}
		now := t.o.Clock.Now()
		t.mu.Lock()
		until, last := t.validUntil, t.lastRenew
		t.mu.Unlock()
		if !now.Before(until) {
			t.Lose("no renewal within the lease")
			return
		}
		if inFlight || (!soon && now.Sub(last) < t.o.Renew) {
			continue
		}
		ctx, c := context.WithTimeout(context.Background(), until.Sub(now))
		cancel, inFlight, soon = c, true, false
		go func(ctx context.Context, start time.Time) {
			taken, err := renew(ctx, start)
			results <- renewResult{start, taken, err}
		}(ctx, now)
	}
}

// Lose ends the term once, for reason; Lost is closed.
func (t *Term) Lose(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == lost {
		return
	}
	if t.state == master && t.o.Logf != nil {
		t.o.Logf("lease: lost the lease: %s", reason)
	}
	t.state, t.reason = lost, reason
	close(t.lost)
}

// Stop ends the term (reason "released") and waits for its renewals to
// stop; a renewal in flight is cancelled and left to finish.
func (t *Term) Stop() {
	t.mu.Lock()
	began := !t.lastRenew.IsZero()
	t.mu.Unlock()
	t.Lose("released")
	t.stopOnce.Do(func() { close(t.stop) })
	if began {
		<-t.done
	}
}

// Ended reports whether the term ended.
func (t *Term) Ended() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state == lost
}

// Lost is closed when the term ends.
func (t *Term) Lost() <-chan struct{} { return t.lost }

// Held reports whether this broker is master now: begun, not ended, and
// its own clock still before the end of the lease minus the margin.
func (t *Term) Held() bool {
	now := t.o.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state == master && now.Before(t.validUntil)
}

// ValidUntil returns the time, on the term's clock, until which this
// broker is master unless it renews (zero before Begin).
func (t *Term) ValidUntil() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.validUntil
}

// Status fills in st's Role, ValidFor and Reason from the term: a master
// past its lease shows as "lost" even before its renewal loop noticed.
func (t *Term) Status(st Status) Status {
	now := t.o.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st.Role, st.Reason = [...]string{"standby", "master", "lost"}[t.state], t.reason
	if t.state == master {
		st.ValidFor = max(0, t.validUntil.Sub(now))
		if st.ValidFor == 0 {
			st.Role = "lost"
		}
	}
	return st
}
