package fault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

var topo = scenario.Topology{
	Sites: []scenario.Site{{Name: "a"}, {Name: "b"}},
	Nodes: []scenario.Node{{Name: "a1", Site: "a"}, {Name: "a2", Site: "a"}, {Name: "b1", Site: "b"}},
	Disks: []scenario.Disk{{Name: "d1", Node: "a1"}, {Name: "san", Nodes: []string{"a1", "a2"}}},
	Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres,
		Replicas: []scenario.Replica{{Name: "pg-b", Site: "b", Sync: true}}},
		{Name: "lite", Site: "a", Kind: scenario.SQLite}},
}

func TestFaultsDriveTheDriver(t *testing.T) {
	for _, c := range []struct {
		step          scenario.Step
		name          string
		inject, after string
	}{
		{scenario.Step{Kind: scenario.Kill, Target: scenario.Target{Node: "a1"}}, "kill a1",
			"kill a1", "start a1"},
		{scenario.Step{Kind: scenario.Stop, Target: scenario.Target{Node: "a1"}}, "stop a1",
			"stop a1", "start a1"},
		{scenario.Step{Kind: scenario.Pause, Target: scenario.Target{Node: "a1"}}, "pause a1",
			"pause a1", "resume a1"},
		{scenario.Step{Kind: scenario.MachineLost, Target: scenario.Target{Node: "a1"}}, "machine-lost a1",
			"kill a1; wipe-node a1", "start a1"},
		{scenario.Step{Kind: scenario.DiskLost, Target: scenario.Target{Disk: "d1"}}, "disk-lost d1",
			"wipe-disk d1", "kill a1; start a1"},
		{scenario.Step{Kind: scenario.DiskLost, Target: scenario.Target{Disk: "san"}}, "disk-lost san",
			"wipe-disk san", "kill a1; kill a2; start a1; start a2"},
		{scenario.Step{Kind: scenario.DiskFull, Target: scenario.Target{Disk: "d1"}}, "disk-full d1",
			"fill d1", "free d1"},
		{scenario.Step{Kind: scenario.SiteLost, Target: scenario.Target{Site: "a"}}, "site-lost a",
			"kill a1; kill a2; kill-db pg; wipe-node a1; wipe-node a2", "restart-db pg; start a1; start a2"},
		{scenario.Step{Kind: scenario.SiteLost, Target: scenario.Target{Site: "b"}}, "site-lost b",
			"kill b1; kill-db pg-b; wipe-node b1", "restart-db pg-b; start b1"},
		{scenario.Step{Kind: scenario.Partition, Target: scenario.Target{Sites: []string{"a", "b"}}}, "partition a<->b",
			"cut a b", "heal a b"},
		{scenario.Step{Kind: scenario.Partition, Target: scenario.Target{Node: "b1"}}, "partition b1",
			"cut b1 *", "heal b1 *"},
		{scenario.Step{Kind: scenario.Latency, Target: scenario.Target{Sites: []string{"a", "b"}}, Delay: scenario.Duration(time.Second)},
			"latency a<->b", "toxic t1 latency a b", "untoxic t1"},
		{scenario.Step{Kind: scenario.Bandwidth, Target: scenario.Target{Sites: []string{"a", "b"}}, KBPerSec: 10},
			"bandwidth a<->b", "toxic t1 bandwidth a b", "untoxic t1"},
		{scenario.Step{Kind: scenario.Reset, Target: scenario.Target{Sites: []string{"a", "b"}}},
			"reset a<->b", "toxic t1 reset a b", "untoxic t1"},
		{scenario.Step{Kind: scenario.Blackhole, Target: scenario.Target{Sites: []string{"a", "b"}}},
			"blackhole a<->b", "toxic t1 blackhole a b", "untoxic t1"},
		{scenario.Step{Kind: scenario.DBLost, Target: scenario.Target{Database: "pg"}}, "db-lost pg",
			"kill-db pg", "restart-db pg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := FromStep(c.step, topo)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name() != c.name {
				t.Errorf("Name() = %q, want %q", f.Name(), c.name)
			}
			d := driver.NewFake("a1", "a2", "b1")
			ctx := context.Background()
			if err := f.Inject(ctx, d); err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != c.inject {
				t.Errorf("Inject: %q, want %q", got, c.inject)
			}
			if err := f.Recover(ctx, d); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimPrefix(strings.TrimPrefix(d.String(), c.inject), "; ")
			if got != c.after {
				t.Errorf("Recover: %q, want %q", got, c.after)
			}
		})
	}
}

func TestRecoverLeavesRunningNodes(t *testing.T) {
	d := driver.NewFake("a1")
	if err := (&Kill{Node: "a1"}).Recover(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if len(d.Calls()) != 0 {
		t.Fatalf("calls %v: a running node was restarted", d.Calls())
	}
}

func TestPowerCutIsUnsupportedLocally(t *testing.T) {
	f, err := FromStep(scenario.Step{Kind: scenario.PowerCut, Target: scenario.Target{Node: "a1"}}, topo)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Inject(context.Background(), driver.NewFake("a1"))
	if !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), "power-cut is unsupported by the fake driver") {
		t.Fatalf("power-cut: %v", err)
	}
}

// bare is a driver with no optional capability.
type bare struct{ driver.Driver }

func TestMissingCapabilityIsUnsupported(t *testing.T) {
	d := bare{driver.NewFake("a1")}
	for _, f := range []Fault{&DiskFull{Disk: "d1"}, &Partition{A: "a", B: "b"}, &Latency{A: "a", B: "b"}, &MachineLost{Node: "a1"}, &DBLost{DB: "pg"},
		&DiskError{Disk: "d1", Errno: "EIO", Ops: []string{"fsync"}}, &DiskStall{Disk: "d1"}, &DiskCorrupt{Disk: "d1", File: "*", Nodes: []string{"a1"}},
		&PowerCut{Node: "a1", Torn: true}} {
		if err := f.Inject(context.Background(), d); !errors.Is(err, driver.ErrUnsupported) {
			t.Errorf("%s on a bare driver: %v", f.Name(), err)
		}
	}
}

func TestNodeDownFaults(t *testing.T) {
	for _, f := range []Fault{&Kill{Node: "a1"}, &Stop{Node: "a1"}, &MachineLost{Node: "a1"}, &SiteLost{Members: []string{"a1"}}, &PowerCut{Node: "a1"}, &DBLost{DB: "a1"}} {
		if nd, ok := f.(NodeDown); !ok || len(nd.Nodes()) != 1 {
			t.Errorf("%T is not a NodeDown of a1", f)
		}
	}
	if _, ok := Fault(&Pause{Node: "a1"}).(NodeDown); ok {
		t.Error("pause leaves the node down")
	}
}
