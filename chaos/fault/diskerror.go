package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskError makes Ops on a disk's files fail with Errno (EIO, ENOSPC)
// until Recover, through the driver's fault-injecting filesystem
// (driver.DiskFaulter).
type DiskError struct {
	Disk, Errno string
	Ops         []string
}

func (f *DiskError) Name() string { return "disk-error " + f.Disk }

func (f *DiskError) Inject(ctx context.Context, d driver.Driver) error {
	df, err := diskFaulter(d, f.Name())
	if err != nil {
		return err
	}
	return df.DiskError(ctx, f.Disk, f.Errno, f.Ops)
}

func (f *DiskError) Recover(ctx context.Context, d driver.Driver) error {
	df, err := diskFaulter(d, f.Name())
	if err != nil {
		return err
	}
	return df.ClearDiskError(ctx, f.Disk)
}

func diskFaulter(d driver.Driver, fault string) (driver.DiskFaulter, error) {
	df, ok := d.(driver.DiskFaulter)
	if !ok {
		return nil, fmt.Errorf("fault: %s: unsupported by the %s driver: it needs a fault-injecting filesystem (FUSE) under the node: %w",
			fault, d.Info().Name, driver.ErrUnsupported)
	}
	return df, nil
}
