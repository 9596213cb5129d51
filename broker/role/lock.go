// Package role is the broker's high-availability role machine, one for
// every HA mode: a broker stands by until it holds its mode's Lock, then
// serves as master until it stops, fails, or loses the lock; a jdbc broker
// without a lock rides out a lost database connection instead
// (reconnecting). cmd/refbroker only picks the Lock and the store.
//
// # The rule every lock keeps
//
// A master acknowledges only while Held, and Held ends before any standby
// can take over: a lease-based lock (the database lease, broker/lease; the
// shared-storage file lease, broker/role/filelease) holds its term with a
// Term, which counts the lease from the start of its last successful
// renewal, minus a margin, on the master's own monotonic clock. Guard
// wraps the store so that a write is acknowledged only when Held both
// before and after it; the machine fails the broker stop when Lost closes.
// A master paused past its lease wakes up with Held false: it
// acknowledges nothing more and exits 1.
package role

import (
	"context"
	"errors"
	"time"
)

// ErrFenced is wrapped by every error of a write refused because this
// broker no longer holds its lock.
var ErrFenced = errors.New("fenced: not the lock holder")

// Lock is a master lock shared by several brokers: at most one holds it
// at a time, each takeover increments its epoch, and the holder keeps it by
// renewing (on its own, for as long as the Lock is held).
type Lock interface {
	// Acquire waits as standby until this broker holds the lock and
	// returns its epoch; it returns ctx's error if ctx ends first.
	Acquire(ctx context.Context) (epoch int64, err error)
	// Held reports whether this broker may acknowledge now: it holds the
	// lock and renewed it recently enough that no standby can have taken
	// over.
	Held() bool
	// Lost is closed when this broker stops being master: a renewal
	// failed in time, the lock was taken over, or it was released.
	Lost() <-chan struct{}
	// Epoch returns the epoch acquired (0 before Acquire).
	Epoch() int64
	// Release gives the lock up, so that a standby takes over at once; a
	// standby's Acquire returns an error.
	Release() error
	// Status is the lock as /readyz and /status show it.
	Status() Status
}

// Status is a Lock's state.
type Status struct {
	Role   string // "standby", "master" or "lost"
	Owner  string // this broker
	Holder string // the holder as last seen (for a standby: the master)
	Epoch  int64
	// ValidFor is how long the master stays master without renewing.
	ValidFor time.Duration
	// Reason says why the lock was lost.
	Reason string
}

// Clock reads the time; its readings must carry a monotonic clock (as
// time.Now's do) or come from a fake that only moves forward.
type Clock interface {
	Now() time.Time
}

// RealClock is time.Now.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }
