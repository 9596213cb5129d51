package locktest

import (
	"sync"
	"time"
)

// Clock is a manual clock: it moves only when Advance is called. Its
// readings carry no monotonic reading, which the locks do not need: a
// fake clock only moves forward.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now implements role.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Pausable is one broker's view of a shared clock: it stands still
// between Pause and Resume, then jumps to the shared time, as a
// SIGSTOPped process sees it.
type Pausable struct {
	base interface{ Now() time.Time }

	mu     sync.Mutex
	paused bool
	at     time.Time
}

// NewPausable returns a running view of base.
func NewPausable(base interface{ Now() time.Time }) *Pausable { return &Pausable{base: base} }

// Now implements role.Clock.
func (p *Pausable) Now() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		return p.at
	}
	return p.base.Now()
}

// Pause stops the view at the current time.
func (p *Pausable) Pause() {
	p.mu.Lock()
	p.paused, p.at = true, p.base.Now()
	p.mu.Unlock()
}

// Resume lets the view follow the shared clock again.
func (p *Pausable) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// Paused reports whether the view stands still (between Pause and
// Resume): a pool whose locks do more than count time, such as a
// replicated node's heartbeats, stops that too meanwhile.
func (p *Pausable) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}
