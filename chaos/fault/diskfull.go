package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskFull fills a disk until writes fail with ENOSPC; Recover frees the
// space. The local driver needs a sized disk (a tmpfs, as root).
type DiskFull struct{ Disk string }

func (f *DiskFull) Name() string { return "disk-full " + f.Disk }

func (f *DiskFull) Inject(ctx context.Context, d driver.Driver) error {
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	return dd.FillDisk(ctx, f.Disk)
}

func (f *DiskFull) Recover(ctx context.Context, d driver.Driver) error {
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	return dd.FreeDisk(ctx, f.Disk)
}
