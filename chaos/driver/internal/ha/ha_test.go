package ha

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// fakeServers is an in-memory cluster: each server runs or not, has a
// WAL position, and records, in order, what the policy asked of it.
type fakeServers struct {
	mu      sync.Mutex
	names   []string
	running []bool
	pos     []uint64
	primary int   // which one takes writes (-1: none)
	streams []int // each standby's source (-1: none)
	syncs   []string
	calls   []string
}

func newFake(names ...string) *fakeServers {
	f := &fakeServers{names: names, running: make([]bool, len(names)), pos: make([]uint64, len(names)),
		streams: make([]int, len(names))}
	for i := range f.streams {
		f.streams[i] = -1
	}
	f.running[0] = true
	return f
}

func (f *fakeServers) record(format string, a ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

func (f *fakeServers) Running(m int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[m]
}

func (f *fakeServers) WALPosition(ctx context.Context, m int) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running[m] {
		return 0, fmt.Errorf("%s down", f.names[m])
	}
	return f.pos[m], nil
}

func (f *fakeServers) Kill(m int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("kill %s", f.names[m])
	f.running[m] = false
	return nil
}

func (f *fakeServers) Promote(ctx context.Context, m int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("promote %s", f.names[m])
	if f.primary >= 0 && f.running[f.primary] {
		return fmt.Errorf("two primaries: %s still runs", f.names[f.primary])
	}
	f.primary, f.streams[m] = m, -1
	return nil
}

func (f *fakeServers) Standby(ctx context.Context, m, p int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("standby %s of %s", f.names[m], f.names[p])
	f.running[m], f.streams[m] = true, p
	return "link-" + f.names[m], nil
}

func (f *fakeServers) Restart(ctx context.Context, m int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("restart %s", f.names[m])
	f.running[m] = true
	return nil
}

func (f *fakeServers) SetSynchronousStandbys(ctx context.Context, p int, names ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs = names
	return nil
}

func (f *fakeServers) WaitStandby(ctx context.Context, p int, name string, sync bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := slices.Index(f.names, name)
	if m < 0 || f.streams[m] != p || !f.running[m] {
		return fmt.Errorf("%s does not stream from %s", name, f.names[p])
	}
	return nil
}

func (f *fakeServers) history() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func spec(t *testing.T, maxLag scenario.Size) scenario.Database {
	t.Helper()
	return scenario.Database{Name: "pg", Site: "a", Kind: scenario.Postgres,
		Replicas: []scenario.Replica{{Name: "pg-async", Site: "b"}, {Name: "pg-sync", Site: "b", Sync: true}},
		Failover: &scenario.Failover{PromoteAfter: scenario.Duration(300 * time.Millisecond), MaxLag: maxLag}}
}

// TestFailoverFencesThenPromotesSync: a primary that stops answering is
// killed before the sync standby (not the async one listed first) is
// promoted, the async one follows the new primary, and the old primary
// comes back rebuilt as a (sync) standby, never restarted on its data.
func TestFailoverFencesThenPromotesSync(t *testing.T) {
	f := newFake("pg", "pg-async", "pg-sync")
	hung := &hungServers{fakeServers: f, hung: -1}
	c := New(spec(t, 0), hung, t.Logf)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if got := f.syncs; !slices.Equal(got, []string{"pg-sync"}) {
		t.Fatalf("synchronous standbys %v, want [pg-sync]", got)
	}
	// The primary stops answering while its process still runs.
	hung.mu.Lock()
	hung.hung = 0
	hung.mu.Unlock()
	waitFor(t, "a promotion", func() bool { return c.Primary() != 0 })
	if p := c.Primary(); p != 2 {
		t.Fatalf("promoted %s, want pg-sync", f.names[p])
	}
	h := strings.Join(f.history(), "; ")
	if !strings.Contains(h, "kill pg; promote pg-sync; standby pg-async of pg-sync") {
		t.Fatalf("history %q: want the old primary killed, then pg-sync promoted, then pg-async following it", h)
	}
	hung.mu.Lock()
	hung.hung = -1
	hung.mu.Unlock()
	if err := c.Restart(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	h = strings.Join(f.history(), "; ")
	if !strings.HasSuffix(h, "standby pg of pg-sync") {
		t.Fatalf("history %q: the fenced old primary must come back rebuilt as a standby", h)
	}
	if got := f.syncs; !slices.Equal(got, []string{"pg"}) {
		t.Fatalf("synchronous standbys of pg-sync %v, want [pg] (the cluster stays synchronous)", got)
	}
}

// hungServers is f with server hung answering no query (paused).
type hungServers struct {
	*fakeServers
	hung int
}

func (h *hungServers) WALPosition(ctx context.Context, m int) (uint64, error) {
	h.mu.Lock()
	hung := h.hung
	h.mu.Unlock()
	if m == hung {
		return 0, fmt.Errorf("%s does not answer", h.names[m])
	}
	return h.fakeServers.WALPosition(ctx, m)
}

// TestFailoverMaxLagRefuses: with every standby further behind than
// max_lag, nothing is fenced nor promoted; once the primary answers again
// it is still the primary.
func TestFailoverMaxLagRefuses(t *testing.T) {
	f := newFake("pg", "pg-async", "pg-sync")
	var (
		logMu   sync.Mutex
		refused bool
	)
	hung := &hungServers{fakeServers: f, hung: -1}
	c := New(spec(t, 1000), hung, func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		t.Log(msg)
		logMu.Lock()
		defer logMu.Unlock()
		refused = refused || strings.Contains(msg, "cannot fail over yet") && strings.Contains(msg, "max_lag")
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	f.mu.Lock()
	f.pos[0] = 5000
	f.mu.Unlock()
	waitFor(t, "the manager to record the primary's position", func() bool { return c.LastPos() == 5000 })
	hung.mu.Lock()
	hung.hung = 0
	hung.mu.Unlock()
	waitFor(t, "the manager to refuse to fail over", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return refused
	})
	if p := c.Primary(); p != 0 {
		t.Fatalf("promoted %s although every standby is past max_lag", f.names[p])
	}
	for _, h := range f.history() {
		if strings.HasPrefix(h, "kill") || strings.HasPrefix(h, "promote") {
			t.Fatalf("history %v: fenced or promoted although every standby is past max_lag", f.history())
		}
	}
	// A standby catches up: then it is promoted.
	f.mu.Lock()
	f.pos[2] = 4500
	f.mu.Unlock()
	waitFor(t, "promotion of the caught-up sync standby", func() bool { return c.Primary() == 2 })
}
