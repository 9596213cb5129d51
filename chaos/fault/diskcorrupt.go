package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskCorrupt damages a disk at rest: it kills the disk's nodes, flips
// every bit of one block of one file matching File (driver.DiskCorrupter;
// Block < 0: Seed chooses) and starts them again on the damaged disk.
type DiskCorrupt struct {
	Disk, File string
	Block      int64
	Seed       uint64
	// Nodes are the nodes that reach the disk.
	Nodes []string
	// Did says what was damaged, once injected.
	Did string
}

func (f *DiskCorrupt) Name() string { return "disk-corrupt " + f.Disk }

func (f *DiskCorrupt) Inject(ctx context.Context, d driver.Driver) error {
	dc, ok := d.(driver.DiskCorrupter)
	if !ok {
		return fmt.Errorf("fault: %s: unsupported by the %s driver: %w", f.Name(), d.Info().Name, driver.ErrUnsupported)
	}
	for _, n := range f.Nodes {
		if d.Running(n) {
			if err := d.Kill(ctx, n); err != nil {
				return err
			}
		}
	}
	did, err := dc.CorruptDisk(ctx, f.Disk, f.File, f.Block, f.Seed)
	if err != nil {
		return err
	}
	f.Did = did
	for _, n := range f.Nodes {
		if err := d.Start(ctx, n); err != nil {
			return fmt.Errorf("fault: %s: restart %s after corrupting %s: %w", f.Name(), n, did, err)
		}
	}
	return nil
}

// Recover restarts a node that did not come back (one that refused the
// damaged disk is started again; it may refuse again).
func (f *DiskCorrupt) Recover(ctx context.Context, d driver.Driver) error {
	for _, n := range f.Nodes {
		if err := restart(ctx, d, n); err != nil {
			return err
		}
	}
	return nil
}
