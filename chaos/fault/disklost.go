package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskLost wipes one disk under its running brokers (see
// driver/local.Driver.WipeDisk for what that means with plain folders:
// open files live on, everything else is gone). Nodes are the nodes that
// reach the disk: one, or several for a shared disk (a SAN). Recover
// restarts each of them, in order, so they come up on the blank disk, as
// after a disk swap.
type DiskLost struct {
	Disk  string
	Nodes []string
}

func (f *DiskLost) Name() string { return "disk-lost " + f.Disk }

func (f *DiskLost) Inject(ctx context.Context, d driver.Driver) error {
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	return dd.WipeDisk(ctx, f.Disk)
}

func (f *DiskLost) Recover(ctx context.Context, d driver.Driver) error {
	for _, n := range f.Nodes {
		if err := d.Kill(ctx, n); err != nil {
			return err
		}
	}
	for _, n := range f.Nodes {
		if err := d.Start(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
