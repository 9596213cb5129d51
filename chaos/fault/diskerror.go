package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskError makes Ops on a disk's files fail with Errno (EIO, ENOSPC)
// until Recover, through the driver's fault-injecting filesystem
// (driver.DiskFaulter).
// With Node, only that node's path to a shared disk fails (the others
// still reach it).
type DiskError struct {
	Disk, Node, Errno string
	Ops               []string
}

func (f *DiskError) Name() string { return "disk-error " + f.Disk + via(f.Node) }

// via names the node whose path alone a disk fault hits: " via a1".
func via(node string) string {
	if node == "" {
		return ""
	}
	return " via " + node
}

func (f *DiskError) Inject(ctx context.Context, d driver.Driver) error {
	df, err := diskFaulter(d, f.Name())
	if err != nil {
		return err
	}
	return df.DiskError(ctx, f.Disk, f.Node, f.Errno, f.Ops)
}

func (f *DiskError) Recover(ctx context.Context, d driver.Driver) error {
	df, err := diskFaulter(d, f.Name())
	if err != nil {
		return err
	}
	return df.ClearDiskError(ctx, f.Disk, f.Node)
}

func diskFaulter(d driver.Driver, fault string) (driver.DiskFaulter, error) {
	df, ok := d.(driver.DiskFaulter)
	if !ok {
		return nil, fmt.Errorf("fault: %s: unsupported by the %s driver: it needs a fault-injecting filesystem (FUSE) under the node: %w",
			fault, d.Info().Name, driver.ErrUnsupported)
	}
	return df, nil
}
