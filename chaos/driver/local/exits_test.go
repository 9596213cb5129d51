package local

import (
	"context"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
)

// TestExits: a broker that exits by itself is recorded with its status;
// one the driver kills or stops is marked as ended by the harness.
func TestExits(t *testing.T) {
	d := newDriver(t, oneSite())
	ctx := context.Background()
	for _, end := range []func(context.Context, string) error{d.Kill, d.Stop} {
		if err := d.Start(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		if err := end(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
	}
	d.nodes["a1"].spec.Broker.Args = []string{"--no-such-flag"} // refused: the broker exits by itself
	if err := d.Start(ctx, "a1"); err == nil {
		t.Fatal("a broker given an unknown flag started")
	}
	var exits []driver.Exit
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if exits = d.Exits(); len(exits) == 3 {
			break
		}
	}
	if len(exits) != 3 {
		t.Fatalf("exits %+v, want 3", exits)
	}
	if e := exits[0]; !e.ByHarness || e.Signal != "killed" || e.Status != -1 {
		t.Errorf("kill: %+v", e)
	}
	if e := exits[1]; !e.ByHarness {
		t.Errorf("stop: %+v", e)
	}
	if e := exits[2]; e.ByHarness || e.Status <= 0 || e.Signal != "" || e.Node != "a1" {
		t.Errorf("refused start: %+v", e)
	}
}
