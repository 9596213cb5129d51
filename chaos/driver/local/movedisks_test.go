package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// withSpare is oneSite plus the spare a2 and a1's disk.
func withSpare() scenario.Topology {
	topo := oneSite(scenario.Disk{Name: "a1-data", Node: "a1"})
	topo.Nodes = append(topo.Nodes, scenario.Node{Name: "a2", Site: "a", Spare: true, Broker: topo.Nodes[0].Broker})
	return topo
}

func TestMoveDisksWithoutLazyFSIsUnsupported(t *testing.T) {
	d := newDriver(t, withSpare())
	if err := d.MoveDisks(context.Background(), "a1", "a2"); !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("moving the disks of a node on a plain folder: %v", err)
	}
}

// TestMoveDisks: the spare starts on the lost node's directories, which
// hold what was synced and nothing else; the lost node has none left.
func TestMoveDisks(t *testing.T) {
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: moving disks needs FUSE as root: %v", err)
	}
	d := newDriverWith(t, withSpare(), func(o *Options) { o.PowerCutNodes = []string{"a1"} })
	ctx := context.Background()
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	data := d.nodes["a1"].dataDir
	f, err := os.Create(filepath.Join(data, "synced"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("kept")
	f.Sync()
	f.Close()
	if err := os.WriteFile(filepath.Join(data, "unsynced"), []byte("lost with the machine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.MoveDisks(ctx, "a1", "a2"); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("moving the disks of a running node: %v", err)
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.MoveDisks(ctx, "a1", "a2"); err != nil {
		t.Fatal(err)
	}
	if got := d.nodes["a2"].dataDir; got != data {
		t.Fatalf("a2's data folder %s, want a1's %s", got, data)
	}
	if err := d.Start(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	if argv := strings.Join(d.Info().Brokers["a2"], " "); !strings.Contains(argv, "--data "+data) {
		t.Errorf("a2 runs %s, not on %s", argv, data)
	}
	for name, want := range map[string]string{"synced": "kept", "unsynced": ""} {
		if b, err := os.ReadFile(filepath.Join(data, name)); err != nil || string(b) != want {
			t.Errorf("%s on the moved disk: %q, %v; want %q", name, b, err, want)
		}
	}
	if err := d.Start(ctx, "a1"); err == nil || !strings.Contains(err.Error(), "moved to a2") {
		t.Fatalf("starting the lost node again: %v", err)
	}
	if _, err := d.faultFS("a1-data", ""); err != nil {
		t.Errorf("the moved disk's faults: %v", err)
	}
}
