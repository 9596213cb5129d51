package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// PowerCut kills a node and drops whatever its disks had not synced. A
// plain folder keeps its page cache across a kill, so this needs a driver
// with a filesystem that drops unsynced writes: the local driver serves
// the data folder of every node a power-cut fault targets through lazyfs
// (FUSE, as root) and implements driver.PowerCutter. A driver without the
// capability, or a local driver without FUSE, returns an error wrapping
// driver.ErrUnsupported and the runner skips the scenario. Recover
// restarts the node on what was durable. Torn also keeps a prefix of the
// last unsynced write (driver.TornPowerCutter), its length from Seed.
type PowerCut struct {
	Node string
	Torn bool
	Seed uint64
}

func (f *PowerCut) Name() string    { return "power-cut " + f.Node }
func (f *PowerCut) Nodes() []string { return []string{f.Node} }

func (f *PowerCut) Inject(ctx context.Context, d driver.Driver) error {
	pc, ok := d.(driver.PowerCutter)
	if !ok {
		return fmt.Errorf("fault: %s: power-cut is unsupported by the %s driver: it needs a filesystem that drops unsynced writes (FUSE): %w",
			f.Name(), d.Info().Name, driver.ErrUnsupported)
	}
	if f.Torn {
		tc, ok := d.(driver.TornPowerCutter)
		if !ok {
			return fmt.Errorf("fault: %s: a torn power-cut is unsupported by the %s driver: %w", f.Name(), d.Info().Name, driver.ErrUnsupported)
		}
		return tc.TornPowerCut(ctx, f.Node, f.Seed)
	}
	return pc.PowerCut(ctx, f.Node)
}

func (f *PowerCut) Recover(ctx context.Context, d driver.Driver) error {
	return restart(ctx, d, f.Node)
}
