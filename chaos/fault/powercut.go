package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// PowerCut kills a node and drops whatever its disks had not synced. With
// plain folders the page cache survives a kill, so only a driver with a
// fault-injecting filesystem (FUSE, later) can do it; others return an
// error wrapping driver.ErrUnsupported. Recover restarts the node.
type PowerCut struct{ Node string }

func (f *PowerCut) Name() string    { return "power-cut " + f.Node }
func (f *PowerCut) Nodes() []string { return []string{f.Node} }

func (f *PowerCut) Inject(ctx context.Context, d driver.Driver) error {
	pc, ok := d.(driver.PowerCutter)
	if !ok {
		return fmt.Errorf("fault: %s: power-cut is unsupported by the %s driver: it needs a filesystem that drops unsynced writes (FUSE): %w",
			f.Name(), d.Info().Name, driver.ErrUnsupported)
	}
	return pc.PowerCut(ctx, f.Node)
}

func (f *PowerCut) Recover(ctx context.Context, d driver.Driver) error {
	return restart(ctx, d, f.Node)
}
