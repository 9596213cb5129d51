package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/mount"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/faultfs"
	"github.com/lossbench/lossbench/chaos/lazyfs"
)

// Power cuts and disk faults: as the local driver does, the data folder
// of every node a power-cut, disk-error, disk-stall or torn power-cut
// may hit is served through lazyfs, here on the host: its backing folder
// is the folder of the data's volume on the engine's host (so the engine
// must be on this machine), its mount point a folder of the run, which
// is bind-mounted into the node's container where the data lives. The
// mount allows other users (allow_other): the container's processes
// reach it through the bind mount. A power cut kills the container and
// drops what lazyfs holds unsynced; Start brings the node back on what
// was durable.

var (
	_ driver.PowerCutter     = (*Driver)(nil)
	_ driver.TornPowerCutter = (*Driver)(nil)
	_ driver.DiskFaulter     = (*Driver)(nil)
	_ driver.DiskCorrupter   = (*Driver)(nil)
)

// lazyNodes are the nodes whose data lazyfs serves.
func (d *Driver) lazyNodes() []string {
	return driver.LazyFSNodes(d.cfg.PowerCutNodes, d.cfg.FaultFSNodes)
}

// layoutLazyFS mounts lazyfs over the data folder of every node a power
// cut or a disk fault may hit (New has checked that FUSE is available).
func (d *Driver) layoutLazyFS(ctx context.Context) error {
	names := d.lazyNodes()
	if len(names) == 0 {
		return nil
	}
	wb, desc, err := faultfs.Writeback(d.cfg.Writeback)
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	d.writeback = desc
	for _, name := range names {
		n, err := d.node(name)
		if err != nil {
			return err
		}
		vol, sub, shared := n.dataVo, "", false
		if vol == "" {
			dk := d.disks[n.dataDisk]
			vol, sub, shared = dk.volume, "data", dk.shared
		}
		dir, err := d.volumeDir(ctx, vol, "node "+name+": lazyfs (power cuts, disk faults) over")
		if err != nil {
			return err
		}
		backing := filepath.Join(dir, sub)
		if err := os.MkdirAll(backing, 0o755); err != nil {
			return fmt.Errorf("docker: node %s: %w", name, err)
		}
		l, err := lazyfs.Mount(backing, filepath.Join(d.cfg.Dir, "lazyfs", name),
			lazyfs.Options{Writeback: wb, SharedLocks: shared, AllowOther: true})
		if err != nil {
			return fmt.Errorf("docker: node %s: %w", name, err)
		}
		n.lazy, n.backing = l, backing
		d.notes = append(d.notes, fmt.Sprintf("node %s: data folder %s (volume %s) served through lazyfs at %s, bind-mounted at %s: writes not fsynced are lost on power-cut; metadata operations are durable at once",
			name, backing, vol, l.Mountpoint(), n.data))
	}
	return nil
}

// lazyMount is the bind mount of n's lazyfs at its data folder.
func (n *node) lazyMount() mount.Mount {
	return mount.Mount{Type: mount.TypeBind, Source: n.lazy.Mountpoint(), Target: n.data}
}

// ensureBacking makes n's lazyfs backing folder again when a wiped disk
// took it: the mount serves it by path.
func (n *node) ensureBacking() error {
	if n.backing == "" {
		return nil
	}
	if err := os.MkdirAll(n.backing, 0o755); err != nil {
		return fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
	}
	return nil
}

// lazyNode is node name when its data is on lazyfs, else an error
// wrapping driver.ErrUnsupported saying why not.
func (d *Driver) lazyNode(name, fault string) (*node, error) {
	n, err := d.node(name)
	if err != nil {
		return nil, err
	}
	if n.lazy == nil {
		return nil, fmt.Errorf("docker: %s: %s is unsupported here: its data folder is not on lazyfs (no power-cut or disk fault named it when the driver was made): %w",
			name, fault, driver.ErrUnsupported)
	}
	return n, nil
}

// PowerCut kills node's container (SIGKILL) and drops every write its
// lazyfs data folder had not synced. The node stays down; Start brings
// it back on what was durable.
func (d *Driver) PowerCut(ctx context.Context, name string) error {
	n, err := d.lazyNode(name, "power-cut")
	if err != nil {
		return err
	}
	if err := d.Kill(ctx, name); err != nil {
		return err
	}
	st := n.lazy.PowerCut()
	d.log("power cut %s: dropped %d unsynced bytes", name, st.LastDropped)
	return nil
}

// TornPowerCut is PowerCut keeping a prefix of the last unsynced write.
func (d *Driver) TornPowerCut(ctx context.Context, name string, seed uint64) error {
	n, err := d.lazyNode(name, "torn power-cut")
	if err != nil {
		return err
	}
	if err := d.Kill(ctx, name); err != nil {
		return err
	}
	st := n.lazy.PowerCutTorn(seed)
	d.log("torn power cut %s: kept %d of the last write's %d bytes, dropped %d unsynced bytes", name, st.LastTorn, st.LastTornOf, st.LastDropped)
	return nil
}

type faulter = faultfs.Faulter

// faultFS returns the lazyfs views of disk that a fault hits: node's
// alone when node is set (one node's path to a shared disk), else every
// attached node's; or an error wrapping driver.ErrUnsupported saying why
// there is none.
func (d *Driver) faultFS(disk, node string) ([]*lazyfs.FS, error) {
	dk, err := d.disk(disk)
	if err != nil {
		return nil, err
	}
	names := dk.nodes
	if !dk.shared {
		names = []string{dk.node}
	}
	if node != "" {
		if !slices.Contains(names, node) {
			return nil, fmt.Errorf("docker: disk %s: node %q does not reach it (%v)", disk, node, names)
		}
		names = []string{node}
	}
	var out []*lazyfs.FS
	for _, name := range names {
		n, err := d.lazyNode(name, "a fault of disk "+disk)
		if err != nil {
			return nil, err
		}
		if n.dataDisk != disk {
			return nil, fmt.Errorf("docker: disk %s: node %s keeps its data on another disk (%s); faults of a disk without the data folder: %w",
				disk, name, n.dataDisk, driver.ErrUnsupported)
		}
		out = append(out, n.lazy)
	}
	return out, nil
}

// CorruptDisk flips one block of one file of the disk at rest, in its
// volume's folder on the host (under lazyfs, its backing: what survives
// a power cut); the disk's nodes must be stopped.
func (d *Driver) CorruptDisk(ctx context.Context, disk, glob string, block int64, seed uint64) (string, error) {
	dk, err := d.disk(disk)
	if err != nil {
		return "", err
	}
	dir, err := d.volumeDir(ctx, dk.volume, "corrupt")
	if err != nil {
		return "", err
	}
	c, err := lazyfs.Corrupt(dir, glob, block, seed)
	if err != nil {
		return "", fmt.Errorf("docker: disk %s: %w", disk, err)
	}
	d.log("disk %s: corrupted %s", disk, c)
	return c.String(), nil
}

// unmountLazy unmounts every node's lazyfs; their containers must be
// gone.
func (d *Driver) unmountLazy() error {
	var errs []error
	for _, n := range d.nodes {
		if n.lazy != nil {
			errs = append(errs, n.lazy.Unmount())
		}
	}
	return errors.Join(errs...)
}

// reapLazy detaches the lazyfs mounts, left by a harness killed before
// its Close (their server died with it), whose backing folder is in one
// of the volume folders dirs; it returns one line per mount.
func reapLazy(dirs []string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var did []string
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts... - fstype source opts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 2 || !strings.HasPrefix(tail[1], "lazyfs:") {
			continue
		}
		backing := strings.TrimPrefix(tail[1], "lazyfs:")
		if !slices.ContainsFunc(dirs, func(dir string) bool { return backing == dir || strings.HasPrefix(backing, dir+"/") }) {
			continue
		}
		if err := lazyfs.ForceUnmount(fields[4]); err != nil {
			errs = append(errs, err)
			continue
		}
		did = append(did, "unmounted left-over lazyfs "+fields[4])
	}
	return did, errors.Join(append(errs, sc.Err())...)
}
