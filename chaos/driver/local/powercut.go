package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/faultfs"
	"github.com/lossbench/lossbench/chaos/lazyfs"
)

var _ driver.PowerCutter = (*Driver)(nil)

// lazyDir is the mount point, under a node's folder, of its data folder
// served through lazyfs.
const lazyDir = "lazyfs"

// layoutLazyFS serves the data folder of every node a power cut may hit
// through lazyfs: the folder laid out before becomes the backing folder,
// and the broker's {data} the mount point. Without FUSE as root the
// nodes stay on plain folders and PowerCut says why it cannot.
func (d *Driver) layoutLazyFS() error {
	nodes := driver.LazyFSNodes(d.opt.PowerCutNodes, d.opt.FaultFSNodes)
	if len(nodes) == 0 {
		return nil
	}
	if err := lazyfs.Available(); err != nil {
		d.lazyErr = err
		d.notes = append(d.notes, fmt.Sprintf("power-cut and disk faults unsupported on %v: %v", nodes, err))
		return nil
	}
	wb, desc, err := faultfs.Writeback(d.opt.Writeback)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	d.writeback = desc
	for _, name := range nodes {
		n, err := d.node(name)
		if err != nil {
			return err
		}
		if n.lazy != nil {
			continue
		}
		if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
			return fmt.Errorf("local: node %s: %w", name, err)
		}
		mnt := filepath.Join(n.dir, lazyDir)
		// Record first: a harness killed right after the mount still
		// has it reaped.
		d.state.addMount(mnt)
		l, err := lazyfs.Mount(n.dataDir, mnt, lazyfs.Options{Writeback: wb, SharedLocks: n.sharedData})
		if err != nil {
			d.state.removeMount(mnt)
			return fmt.Errorf("local: node %s: %w", name, err)
		}
		n.lazy, n.backing, n.dataDir = l, n.dataDir, mnt
		d.notes = append(d.notes, fmt.Sprintf("node %s: data folder %s served through lazyfs at %s: writes not fsynced are lost on power-cut; metadata operations are durable at once", name, n.backing, mnt))
	}
	return nil
}

// PowerCut kills node (SIGKILL) and drops every write its lazyfs data
// folder had not synced. The node stays down; Start brings it back on
// what was durable.
func (d *Driver) PowerCut(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	if n.lazy == nil {
		why := "no power-cut fault named it when the driver was made"
		if d.lazyErr != nil {
			why = d.lazyErr.Error()
		}
		return fmt.Errorf("local: %s: power-cut is unsupported by the local driver here: its data folder is not on lazyfs (%s): %w",
			name, why, driver.ErrUnsupported)
	}
	if err := d.Kill(ctx, name); err != nil {
		return err
	}
	st := n.lazy.PowerCut()
	d.opt.Log("power cut %s: dropped %d unsynced bytes", name, st.LastDropped)
	return nil
}

// LazyStats returns the lazyfs counters of node's data folder; ok is
// false when it is not on lazyfs.
func (d *Driver) LazyStats(name string) (st lazyfs.Stats, ok bool) {
	n, err := d.node(name)
	if err != nil || n.lazy == nil {
		return lazyfs.Stats{}, false
	}
	return n.lazy.Stats(), true
}

// unmountLazy unmounts every node's lazyfs; the nodes must be stopped.
func (d *Driver) unmountLazy() error {
	var errs []error
	for _, n := range d.nodes {
		if n.lazy == nil {
			continue
		}
		if err := n.lazy.Unmount(); err != nil {
			errs = append(errs, err)
			continue
		}
		d.state.removeMount(n.lazy.Mountpoint())
	}
	return errors.Join(errs...)
}
