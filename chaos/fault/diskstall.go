package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DiskStall holds every operation on a disk until Recover (a dying disk,
// a SAN path failover), through driver.DiskFaulter; with Node, only that
// node's path to a shared disk (the others still reach it).
type DiskStall struct{ Disk, Node string }

func (f *DiskStall) Name() string { return "disk-stall " + f.Disk + via(f.Node) }

func (f *DiskStall) Inject(ctx context.Context, d driver.Driver) error {
	df, err := diskFaulter(d, f.Name())
	if err != nil {
		return err
	}
	return df.StallDisk(ctx, f.Disk, f.Node)
}

func (f *DiskStall) Recover(ctx context.Context, d driver.Driver) error {
	df, err := diskFaulter(d, f.Name())
	if err != nil {
		return err
	}
	return df.EndDiskStall(ctx, f.Disk, f.Node)
}
