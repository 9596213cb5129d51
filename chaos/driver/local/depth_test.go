package local

import (
	"context"
	"testing"
	"time"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestQueueDepth reads a node's depth from its admin /status (fakebroker
// answers in refbroker's shape); a command broker cannot say.
func TestQueueDepth(t *testing.T) {
	topo := oneSite()
	topo.Nodes = append(topo.Nodes, scenario.Node{Name: "x1", Site: "a",
		Broker: scenario.Broker{Kind: scenario.Command, Command: []string{brokerBin, "--listen", "{listen}", "--admin", "{admin}"}}})
	d := newDriver(t, topo)
	ctx := context.Background()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := sendOnce(addr, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := d.QueueDepth(ctx, "a1", "/queue/t"); !ok || n != 3 {
		t.Errorf("a1 /queue/t: %d %v, want 3 true", n, ok)
	}
	if n, ok := d.QueueDepth(ctx, "a1", "/queue/none"); !ok || n != 0 {
		t.Errorf("a1 /queue/none: %d %v, want 0 true", n, ok)
	}
	if _, ok := d.QueueDepth(ctx, "x1", "/queue/t"); ok {
		t.Error("a command broker's depth is not known")
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.QueueDepth(ctx, "a1", "/queue/t"); ok {
		t.Error("a killed node says a depth")
	}
}
