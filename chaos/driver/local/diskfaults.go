package local

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/faultfs"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

var (
	_ driver.DiskFaulter     = (*Driver)(nil)
	_ driver.TornPowerCutter = (*Driver)(nil)
	_ driver.DiskCorrupter   = (*Driver)(nil)
)

type faulter = faultfs.Faulter

// faultFS returns the lazyfs views of disk that a fault hits: node's
// alone when node is set (one node's path to a shared disk), else every
// attached node's; or an error wrapping driver.ErrUnsupported saying why
// there is none.
func (d *Driver) faultFS(disk, node string) ([]*lazyfs.FS, error) {
	dk, ok := d.disks[disk]
	if !ok {
		return nil, fmt.Errorf("local: no disk %q", disk)
	}
	var sd scenario.Disk
	for _, k := range d.topo.Disks {
		if k.Name == disk {
			sd = k
		}
	}
	names := sd.Attached()
	if !dk.shared {
		names = []string{dk.node} // a moved disk's node (MoveDisks)
	}
	if node != "" {
		if !slices.Contains(names, node) {
			return nil, fmt.Errorf("local: disk %s: node %q does not reach it (%v)", disk, node, names)
		}
		names = []string{node}
	}
	var out []*lazyfs.FS
	for _, name := range names {
		n, err := d.node(name)
		if err != nil {
			return nil, err
		}
		if n.lazy == nil {
			why := "no disk fault named it when the driver was made"
			if d.lazyErr != nil {
				why = d.lazyErr.Error()
			}
			return nil, fmt.Errorf("local: disk %s: disk faults are unsupported by the local driver here: node %s's data folder is not on lazyfs (%s): %w",
				disk, name, why, driver.ErrUnsupported)
		}
		if filepath.Dir(n.backing) != dk.path {
			return nil, fmt.Errorf("local: disk %s: node %s keeps its data on another disk (%s); faults of a disk without the data folder: %w",
				disk, name, n.backing, driver.ErrUnsupported)
		}
		out = append(out, n.lazy)
	}
	return out, nil
}

// TornPowerCut is PowerCut keeping a prefix of the last unsynced write.
func (d *Driver) TornPowerCut(ctx context.Context, name string, seed uint64) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	if n.lazy == nil {
		return d.PowerCut(ctx, name) // says why it cannot
	}
	if err := d.Kill(ctx, name); err != nil {
		return err
	}
	st := n.lazy.PowerCutTorn(seed)
	d.opt.Log("torn power cut %s: kept %d of the last write's %d bytes, dropped %d unsynced bytes", name, st.LastTorn, st.LastTornOf, st.LastDropped)
	return nil
}

// CorruptDisk flips one block of one file of the disk at rest; the disk's
// nodes must be stopped. A node on lazyfs is corrupted in its backing
// folder (what survives a power cut).
func (d *Driver) CorruptDisk(ctx context.Context, disk, glob string, block int64, seed uint64) (string, error) {
	dk, ok := d.disks[disk]
	if !ok {
		return "", fmt.Errorf("local: no disk %q", disk)
	}
	c, err := lazyfs.Corrupt(dk.path, glob, block, seed)
	if err != nil {
		return "", fmt.Errorf("local: disk %s: %w", disk, err)
	}
	d.opt.Log("disk %s: corrupted %s", disk, c)
	return c.String(), nil
}
