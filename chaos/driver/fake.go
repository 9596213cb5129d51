package driver

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Fake is an in-memory Driver (with Disks and Links) that only records
// the calls made to it, for tests of faults and runners.
type Fake struct {
	mu      sync.Mutex
	calls   []string
	running map[string]bool
	nextID  int
	// Err, if set, is returned by every call whose record it matches.
	Err func(call string) error
}

var _ Driver = (*Fake)(nil)
var _ Disks = (*Fake)(nil)
var _ Links = (*Fake)(nil)
var _ Databases = (*Fake)(nil)

// NewFake returns a fake whose given nodes are running.
func NewFake(running ...string) *Fake {
	f := &Fake{running: map[string]bool{}}
	for _, n := range running {
		f.running[n] = true
	}
	return f
}

func (f *Fake) record(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.Err != nil {
		return f.Err(c)
	}
	return nil
}

// Calls returns the calls so far, one "verb args" string each.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// String joins the calls with "; ".
func (f *Fake) String() string { return strings.Join(f.Calls(), "; ") }

func (f *Fake) set(node string, up bool) {
	f.mu.Lock()
	f.running[node] = up
	f.mu.Unlock()
}

func (f *Fake) Start(_ context.Context, n string) error {
	f.set(n, true)
	return f.record("start %s", n)
}
func (f *Fake) Stop(_ context.Context, n string) error {
	f.set(n, false)
	return f.record("stop %s", n)
}
func (f *Fake) Kill(_ context.Context, n string) error {
	f.set(n, false)
	return f.record("kill %s", n)
}
func (f *Fake) Pause(_ context.Context, n string) error  { return f.record("pause %s", n) }
func (f *Fake) Resume(_ context.Context, n string) error { return f.record("resume %s", n) }
func (f *Fake) Running(n string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[n]
}
func (f *Fake) ClientAddr(n string) (string, error) { return "fake:" + n, nil }
func (f *Fake) Info() Info                          { return Info{Name: "fake"} }
func (f *Fake) Close() error                        { return f.record("close") }

func (f *Fake) WipeDisk(_ context.Context, d string) error { return f.record("wipe-disk %s", d) }
func (f *Fake) WipeNode(_ context.Context, n string) error { return f.record("wipe-node %s", n) }
func (f *Fake) FillDisk(_ context.Context, d string) error { return f.record("fill %s", d) }
func (f *Fake) FreeDisk(_ context.Context, d string) error { return f.record("free %s", d) }

func (f *Fake) Cut(_ context.Context, a, b string) error  { return f.record("cut %s %s", a, b) }
func (f *Fake) Heal(_ context.Context, a, b string) error { return f.record("heal %s %s", a, b) }
func (f *Fake) AddToxic(_ context.Context, a, b string, t Toxic) (string, error) {
	f.mu.Lock()
	f.nextID++
	id := fmt.Sprintf("t%d", f.nextID)
	f.mu.Unlock()
	return id, f.record("toxic %s %s %s %s", id, t.Kind, a, b)
}
func (f *Fake) RemoveToxic(_ context.Context, id string) error { return f.record("untoxic %s", id) }

func (f *Fake) KillDB(_ context.Context, db string) error    { return f.record("kill-db %s", db) }
func (f *Fake) RestartDB(_ context.Context, db string) error { return f.record("restart-db %s", db) }
