package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// disk is a folder under Dir/disks, a tmpfs of the disk's size when it
// has one and we may mount.
type disk struct {
	name, node string
	shared     bool // several nodes reach it (scenario.Disk.Nodes)
	path       string
	size       int64
	mounted    bool
}

func (d *Driver) layoutDisks() error {
	root := os.Geteuid() == 0
	for _, sd := range d.topo.Disks {
		dk := &disk{name: sd.Name, node: sd.Node, shared: sd.Shared(), path: filepath.Join(d.opt.Dir, "disks", sd.Name), size: int64(sd.Size)}
		if err := os.MkdirAll(dk.path, 0o755); err != nil {
			return fmt.Errorf("local: disk %s: %w", sd.Name, err)
		}
		d.disks[sd.Name] = dk
		if dk.size > 0 {
			if !root {
				d.notes = append(d.notes, fmt.Sprintf("disk %s: size %d ignored: a size-limited tmpfs needs root; disk-full on it is skipped", sd.Name, dk.size))
			} else if err := dk.mount(d); err != nil {
				return err
			}
		}
		// A node's data lives on its first disk that mirrors no other;
		// the nodes of a shared disk share one data directory on it.
		for _, name := range sd.Attached() {
			n, err := d.node(name)
			if err != nil {
				return fmt.Errorf("local: disk %s: %w", sd.Name, err)
			}
			if sd.MirrorOf == "" && n.dataDir == filepath.Join(n.dir, "data") {
				n.dataDir, n.sharedData = filepath.Join(dk.path, "data"), dk.shared
			}
		}
	}
	return nil
}

func (dk *disk) mount(d *Driver) error {
	// Record first: a harness killed right after the mount still has it
	// reaped.
	d.state.addMount(dk.path)
	opts := "size=" + strconv.FormatInt(dk.size, 10) + ",mode=0755"
	if err := syscall.Mount("tmpfs", dk.path, "tmpfs", 0, opts); err != nil {
		d.state.removeMount(dk.path)
		return fmt.Errorf("local: disk %s: mount tmpfs (%s) on %s: %w", dk.name, opts, dk.path, err)
	}
	dk.mounted = true
	return nil
}

func (dk *disk) unmount() error {
	if !dk.mounted {
		return nil
	}
	if err := syscall.Unmount(dk.path, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("local: unmount %s: %w", dk.path, err)
	}
	dk.mounted = false
	return nil
}

func (d *Driver) disk(name string) (*disk, error) {
	dk, ok := d.disks[name]
	if !ok {
		return nil, fmt.Errorf("local: disk %q: %w", name, driver.ErrUnknown)
	}
	return dk, nil
}

// wipe removes everything in dir, keeping dir itself.
func wipe(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var first error
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WipeDisk deletes every file on disk. Under a running broker this is a
// disk swapped for a blank one while the broker still holds its open
// files: writes through already open descriptors still succeed (they go
// to unlinked inodes that vanish when closed), files opened later start
// empty, and whatever the broker reads back after a restart is gone. A
// real dead disk would fail writes with EIO instead; that needs a
// fault-injecting filesystem (FUSE), not a folder.
func (d *Driver) WipeDisk(ctx context.Context, name string) error {
	dk, err := d.disk(name)
	if err != nil {
		return err
	}
	if err := wipe(dk.path); err != nil {
		return fmt.Errorf("local: wipe disk %s: %w", name, err)
	}
	d.opt.Log("wipe disk %s", name)
	return nil
}

// WipeNode wipes every disk of node and its data folder.
func (d *Driver) WipeNode(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	for _, dk := range d.disks {
		if dk.node == name && !dk.shared { // a node lost leaves a shared disk alone
			if err := d.WipeDisk(ctx, dk.name); err != nil {
				return err
			}
		}
	}
	if n.sharedData {
		return nil
	}
	if err := wipe(n.dataDir); err != nil {
		return fmt.Errorf("local: wipe node %s: %w", name, err)
	}
	return nil
}

// FillDisk writes one file until the disk is full. It needs a sized disk
// (a tmpfs): filling the machine's real disk is not a fault we inject.
func (d *Driver) FillDisk(ctx context.Context, name string) error {
	dk, err := d.disk(name)
	if err != nil {
		return err
	}
	if !dk.mounted {
		return fmt.Errorf("local: disk-full on %s needs a disk with a size, mounted as tmpfs as root: %w", name, driver.ErrUnsupported)
	}
	if err := osutil.Fill(ctx, dk.path); err != nil {
		return fmt.Errorf("local: fill disk %s: %w", name, err)
	}
	d.opt.Log("disk %s full", name)
	return nil
}

// FreeDisk removes the file FillDisk wrote.
func (d *Driver) FreeDisk(ctx context.Context, name string) error {
	dk, err := d.disk(name)
	if err != nil {
		return err
	}
	if err := osutil.Unfill(dk.path); err != nil {
		return fmt.Errorf("local: free disk %s: %w", name, err)
	}
	d.opt.Log("disk %s freed", name)
	return nil
}
