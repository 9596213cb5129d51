package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskLost wipes one disk under its running broker (see
// driver/local.Driver.WipeDisk for what that means with plain folders:
// open files live on, everything else is gone). Recover restarts the
// node so it comes up on the blank disk, as after a disk swap.
type DiskLost struct{ Disk, Node string }

func (f *DiskLost) Name() string { return "disk-lost " + f.Disk }

func (f *DiskLost) Inject(ctx context.Context, d driver.Driver) error {
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	return dd.WipeDisk(ctx, f.Disk)
}

func (f *DiskLost) Recover(ctx context.Context, d driver.Driver) error {
	if err := d.Kill(ctx, f.Node); err != nil {
		return err
	}
	return d.Start(ctx, f.Node)
}
