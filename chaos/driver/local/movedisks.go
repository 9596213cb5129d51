package local

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/lossbench/lossbench/chaos/driver"
)

var _ driver.DiskMover = (*Driver)(nil)

// MoveDisks gives the disks of node from, which must be down, to the
// spare node to: to's data folder becomes from's (the same directories,
// through the same lazyfs mount), and from is left with none. The move
// needs from's data on lazyfs (a power-cut target: the runner names
// the targets of machine-lost faults with move_disks_to among them): a
// lost machine's page cache goes with it, so what from had not synced is
// dropped first. On a plain folder it would survive the loss, which no
// real machine does: unsupported.
func (d *Driver) MoveDisks(ctx context.Context, from, to string) error {
	src, err := d.node(from)
	if err != nil {
		return err
	}
	dst, err := d.node(to)
	if err != nil {
		return err
	}
	if src.current() != nil {
		return fmt.Errorf("local: move disks of %s: it is still running", from)
	}
	if dst.current() != nil {
		return fmt.Errorf("local: move disks of %s to %s: %s is already running", from, to, to)
	}
	if src.lazy == nil {
		why := "no power-cut or move named it when the driver was made"
		if d.lazyErr != nil {
			why = d.lazyErr.Error()
		}
		return fmt.Errorf("local: move disks of %s to %s: %s's data folder is not on lazyfs (%s), so what it had not synced would survive the lost machine: %w",
			from, to, from, why, driver.ErrUnsupported)
	}
	st := src.lazy.PowerCut()
	d.opt.Log("machine %s lost: dropped %d unsynced bytes; its disks move to %s", from, st.LastDropped, to)
	src.mu.Lock()
	dst.mu.Lock()
	dst.dataDir, dst.lazy, dst.backing, dst.sharedData = src.dataDir, src.lazy, src.backing, src.sharedData
	src.lazy, src.backing, src.moved = nil, "", to
	src.dataDir = filepath.Join(src.dir, "no-disks")
	dst.mu.Unlock()
	src.mu.Unlock()
	for _, dk := range d.disks {
		if dk.node == from && !dk.shared {
			dk.node = to
		}
	}
	return nil
}
