// Package fault holds the faults a scenario injects, as values: each has
// a Name, an Inject and a Recover (undo: restart, resume, heal, remove a
// toxic). One fault a file. A fault needs only the driver capability it
// uses (driver.Disks, driver.Links, driver.PowerCutter); without it,
// Inject returns an error wrapping driver.ErrUnsupported.
package fault

import (
	"context"
	"fmt"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Fault is one injectable failure.
type Fault interface {
	// Name labels the fault in histories and reports: "kill a1".
	Name() string
	// Inject starts the fault.
	Inject(ctx context.Context, d driver.Driver) error
	// Recover undoes it; a fault with nothing to undo returns nil.
	Recover(ctx context.Context, d driver.Driver) error
}

// NodeDown is a fault that leaves nodes (or databases) down until Recover:
// the recovery phase repairs it only for the ones the scenario repairs.
type NodeDown interface {
	Fault
	// Nodes are the nodes (or databases) the fault takes down.
	Nodes() []string
}

// Record is what happened to one fault in a run, for result.json.
type Record struct {
	Name  string    `json:"name"`
	Kind  string    `json:"kind"`
	Start time.Time `json:"start"`
	// End is when it was recovered; zero if it never was.
	End   time.Time `json:"end,omitempty"`
	Error string    `json:"error,omitempty"`
}

// FromStep makes the fault of one resolved scenario step. topo resolves a
// site to its nodes.
func FromStep(st scenario.Step, topo scenario.Topology) (Fault, error) {
	t := st.Target
	name := st.Name()
	switch st.Kind {
	case scenario.Kill:
		return &Kill{Node: t.Node}, needs(name, t.Node)
	case scenario.Pause:
		return &Pause{Node: t.Node}, needs(name, t.Node)
	case scenario.Stop:
		return &Stop{Node: t.Node}, needs(name, t.Node)
	case scenario.MachineLost:
		return &MachineLost{Node: t.Node, MoveTo: st.MoveDisksTo}, needs(name, t.Node)
	case scenario.PowerCut:
		return &PowerCut{Node: t.Node, Torn: st.Torn, Seed: st.Seed}, needs(name, t.Node)
	case scenario.DiskLost:
		f := &DiskLost{Disk: t.Disk}
		for _, dk := range topo.Disks {
			if dk.Name == t.Disk {
				f.Nodes = dk.Attached()
			}
		}
		return f, needs(name, append([]string{t.Disk}, f.Nodes...)...)
	case scenario.DBLost:
		return &DBLost{DB: t.Database}, needs(name, t.Database)
	case scenario.DBDataLost:
		return &DBDataLost{DB: t.Database}, needs(name, t.Database)
	case scenario.DiskFull:
		return &DiskFull{Disk: t.Disk}, needs(name, t.Disk)
	case scenario.DiskError:
		return &DiskError{Disk: t.Disk, Node: st.Node, Errno: st.Errno, Ops: st.Ops}, needs(name, t.Disk, st.Errno)
	case scenario.DiskStall:
		return &DiskStall{Disk: t.Disk, Node: st.Node}, needs(name, t.Disk)
	case scenario.DiskCorrupt:
		f := &DiskCorrupt{Disk: t.Disk, File: st.File, Block: -1, Seed: st.Seed}
		if st.Block != nil {
			f.Block = *st.Block
		}
		for _, dk := range topo.Disks {
			if dk.Name == t.Disk {
				f.Nodes = dk.Attached()
			}
		}
		return f, needs(name, t.Disk, st.File)
	case scenario.SiteLost:
		var nodes []string
		for _, n := range topo.Nodes {
			if n.Site == t.Site {
				nodes = append(nodes, n.Name)
			}
		}
		f := &SiteLost{Site: t.Site, Members: nodes}
		for _, db := range topo.Databases {
			if db.Kind == scenario.SQLite {
				continue // a file on a node's disk, lost with it
			}
			for _, sv := range db.Servers() {
				if sv.Site == t.Site {
					f.Databases = append(f.Databases, sv.Name)
				}
			}
		}
		return f, needs(name, t.Site)
	case scenario.Partition:
		if t.Node != "" {
			return &Partition{A: t.Node, B: driver.Any}, nil
		}
		if len(t.Sites) != 2 {
			return nil, fmt.Errorf("fault: %s: needs two sites or a node", name)
		}
		return &Partition{A: t.Sites[0], B: t.Sites[1]}, nil
	case scenario.Latency, scenario.Bandwidth, scenario.Reset, scenario.Blackhole:
		a, b, err := ends(name, t)
		if err != nil {
			return nil, err
		}
		switch st.Kind {
		case scenario.Latency:
			return &Latency{A: a, B: b, Delay: st.Delay.D(), Jitter: st.Jitter.D()}, nil
		case scenario.Bandwidth:
			return &Bandwidth{A: a, B: b, KBPerSec: st.KBPerSec}, nil
		case scenario.Blackhole:
			return &Blackhole{A: a, B: b}, nil
		default:
			return &Reset{A: a, B: b}, nil
		}
	}
	return nil, fmt.Errorf("fault: %s: kind %q: %w", name, st.Kind, driver.ErrUnsupported)
}

func needs(fault string, names ...string) error {
	for _, n := range names {
		if n == "" {
			return fmt.Errorf("fault: %s: missing target", fault)
		}
	}
	return nil
}

// ends is a link fault's two ends: the pair of sites, or a node and Any.
func ends(fault string, t scenario.Target) (string, string, error) {
	switch {
	case len(t.Sites) == 2:
		return t.Sites[0], t.Sites[1], nil
	case t.Node != "":
		return t.Node, driver.Any, nil
	case t.Site != "":
		return t.Site, driver.Any, nil
	}
	return "", "", fmt.Errorf("fault: %s: needs a link (two sites) or a node", fault)
}

func disks(d driver.Driver, fault string) (driver.Disks, error) {
	dd, ok := d.(driver.Disks)
	if !ok {
		return nil, fmt.Errorf("fault: %s: disk faults: %w", fault, driver.ErrUnsupported)
	}
	return dd, nil
}

func links(d driver.Driver, fault string) (driver.Links, error) {
	dl, ok := d.(driver.Links)
	if !ok {
		return nil, fmt.Errorf("fault: %s: link faults: %w", fault, driver.ErrUnsupported)
	}
	return dl, nil
}

// restart starts node unless it already runs.
func restart(ctx context.Context, d driver.Driver, node string) error {
	if d.Running(node) {
		return nil
	}
	return d.Start(ctx, node)
}
