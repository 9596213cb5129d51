package driver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Fake is an in-memory Driver (with Disks, Links and Databases) that runs
// nothing and records the calls made to it, for tests of faults and
// runners. One made by NewFakeOf also keeps the state a driver would: it
// refuses names its topology lacks (ErrUnknown), pausing a node that is
// down, and removing a toxic twice, so it passes drivertest.
type Fake struct {
	mu      sync.Mutex
	calls   []string
	running map[string]bool
	nextID  int
	topo    *scenario.Topology
	toxics  map[string]bool
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

// NewFakeOf returns a fake for topo: nothing runs yet, and calls naming
// what topo lacks fail with ErrUnknown.
func NewFakeOf(topo scenario.Topology) *Fake {
	return &Fake{running: map[string]bool{}, topo: &topo, toxics: map[string]bool{}}
}

// check returns an ErrUnknown error when the fake has a topology and
// name is none of kind's names there.
func (f *Fake) check(kind, name string) error {
	if f.topo == nil {
		return nil
	}
	var names []string
	switch kind {
	case "node":
		for _, n := range f.topo.Nodes {
			names = append(names, n.Name)
		}
	case "disk":
		for _, d := range f.topo.Disks {
			names = append(names, d.Name)
		}
	case "database":
		for _, d := range f.topo.Databases {
			names = append(names, d.Name)
		}
	case "end":
		if name == Any || name == "clients" {
			return nil
		}
		for _, n := range f.topo.Nodes {
			names = append(names, n.Name)
		}
		for _, s := range f.topo.Sites {
			names = append(names, s.Name)
		}
	}
	if slices.Contains(names, name) {
		return nil
	}
	return fmt.Errorf("fake: %s %q: %w", kind, name, ErrUnknown)
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
	if err := f.check("node", n); err != nil {
		return err
	}
	f.set(n, true)
	return f.record("start %s", n)
}
func (f *Fake) Stop(_ context.Context, n string) error {
	if err := f.check("node", n); err != nil {
		return err
	}
	f.set(n, false)
	return f.record("stop %s", n)
}
func (f *Fake) Kill(_ context.Context, n string) error {
	if err := f.check("node", n); err != nil {
		return err
	}
	f.set(n, false)
	return f.record("kill %s", n)
}
func (f *Fake) Pause(_ context.Context, n string) error {
	if err := f.check("node", n); err != nil {
		return err
	}
	if f.topo != nil && !f.Running(n) {
		return fmt.Errorf("fake: pause %s: not running", n)
	}
	return f.record("pause %s", n)
}
func (f *Fake) Resume(_ context.Context, n string) error {
	if err := f.check("node", n); err != nil {
		return err
	}
	return f.record("resume %s", n)
}
func (f *Fake) Running(n string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[n]
}
func (f *Fake) ClientAddr(n string) (string, error) {
	if err := f.check("node", n); err != nil {
		return "", err
	}
	return "fake:" + n, nil
}
func (f *Fake) Info() Info { return Info{Name: "fake"} }
func (f *Fake) Close() error {
	f.mu.Lock()
	clear(f.running)
	f.mu.Unlock()
	return f.record("close")
}

func (f *Fake) WipeDisk(_ context.Context, d string) error {
	if err := f.check("disk", d); err != nil {
		return err
	}
	return f.record("wipe-disk %s", d)
}
func (f *Fake) WipeNode(_ context.Context, n string) error {
	if err := f.check("node", n); err != nil {
		return err
	}
	return f.record("wipe-node %s", n)
}
func (f *Fake) FillDisk(_ context.Context, d string) error {
	if err := f.check("disk", d); err != nil {
		return err
	}
	return f.record("fill %s", d)
}
func (f *Fake) FreeDisk(_ context.Context, d string) error {
	if err := f.check("disk", d); err != nil {
		return err
	}
	return f.record("free %s", d)
}

func (f *Fake) ends(a, b string) error {
	if err := f.check("end", a); err != nil {
		return err
	}
	return f.check("end", b)
}
func (f *Fake) Cut(_ context.Context, a, b string) error {
	if err := f.ends(a, b); err != nil {
		return err
	}
	return f.record("cut %s %s", a, b)
}
func (f *Fake) Heal(_ context.Context, a, b string) error {
	if err := f.ends(a, b); err != nil {
		return err
	}
	return f.record("heal %s %s", a, b)
}
func (f *Fake) AddToxic(_ context.Context, a, b string, t Toxic) (string, error) {
	if err := f.ends(a, b); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.nextID++
	id := fmt.Sprintf("t%d", f.nextID)
	if f.toxics != nil {
		f.toxics[id] = true
	}
	f.mu.Unlock()
	return id, f.record("toxic %s %s %s %s", id, t.Kind, a, b)
}
func (f *Fake) RemoveToxic(_ context.Context, id string) error {
	f.mu.Lock()
	known := f.toxics == nil || f.toxics[id]
	delete(f.toxics, id)
	f.mu.Unlock()
	if !known {
		return fmt.Errorf("fake: toxic %q: %w", id, ErrUnknown)
	}
	return f.record("untoxic %s", id)
}

func (f *Fake) KillDB(_ context.Context, db string) error {
	if err := f.check("database", db); err != nil {
		return err
	}
	return f.record("kill-db %s", db)
}
func (f *Fake) RestartDB(_ context.Context, db string) error {
	if err := f.check("database", db); err != nil {
		return err
	}
	return f.record("restart-db %s", db)
}
