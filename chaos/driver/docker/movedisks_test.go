package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"
	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestMoveDisks: machine-lost move_disks_to on containers. a1's disk
// (on lazyfs) moves to the spare a2: a file a1 wrote without syncing is
// dropped with the lost machine, a message a1 acknowledged (fsync
// always) is served by a2, started on the same volume, a1's container is
// gone and starting a1 again is an error naming the spare.
func TestMoveDisks(t *testing.T) {
	cli := engine(t)
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx := t.Context()
	rb := scenario.Broker{Kind: scenario.RefBroker, Store: "journal", Fsync: "always"}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: rb}, {Name: "a2", Site: "a", Spare: true, Broker: rb}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "move", PowerCutNodes: []string{"a1"}, Writeback: scenario.WritebackNone, Log: t.Logf})
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := sendTo(d, "a1", "acknowledged"); err != nil {
		t.Fatal(err)
	}
	unsynced := filepath.Join(d.nodes["a1"].lazy.Mountpoint(), "unsynced")
	if err := os.WriteFile(unsynced, []byte("page cache"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := d.nodes["a1"].id
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.MoveDisks(ctx, "a1", "a2"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d.nodes["a2"].backing, "unsynced")); err == nil && len(b) > 0 {
		t.Fatalf("a1's unsynced write survived the lost machine: %q", b)
	}
	if _, err := cli.ContainerInspect(ctx, old, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("a1's container %.12s is still there after its machine was lost", old)
	}
	if err := d.Start(ctx, "a1"); err == nil || !strings.Contains(err.Error(), "a2") {
		t.Errorf("Start of a1 after its disks moved: %v, want an error naming a2", err)
	}
	if err := d.Start(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	c, err := stompConn(d, "a2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/powercut", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, sub, "a2", "acknowledged")
}
