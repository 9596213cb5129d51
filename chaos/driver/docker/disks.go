package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lossbench/lossbench/chaos/driver"
)

// wipeVolume deletes everything in a named volume, under a running
// container if there is one (its open files live on, unlinked, as on the
// local driver). It works on the volume's folder on the engine's host,
// so it needs that engine to be on this machine; the refbroker image has
// no shell to do it from inside.
func (d *Driver) wipeVolume(ctx context.Context, name string) error {
	dir, err := d.volumeDir(ctx, name, "wipe")
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("docker: wipe volume %s: %w", name, err)
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}

func (d *Driver) disk(name string) (*disk, error) {
	dk, ok := d.disks[name]
	if !ok {
		return nil, fmt.Errorf("docker: disk %q: %w", name, driver.ErrUnknown)
	}
	return dk, nil
}

// WipeDisk deletes every file on disk's volume.
func (d *Driver) WipeDisk(ctx context.Context, name string) error {
	dk, err := d.disk(name)
	if err != nil {
		return err
	}
	if err := d.wipeVolume(ctx, dk.volume); err != nil {
		return err
	}
	d.log("wipe disk %s (volume %s)", name, dk.volume)
	return nil
}

// WipeNode replaces node's machine (machine-lost, site-lost): it removes
// the node's container (SIGKILL if it still runs) and the volumes only it
// mounts (its disks and its own data volume; a disk shared with other
// nodes stays, as they still reach it), then makes those volumes anew,
// empty, and a new container, not started, for Start. The old
// container's output is kept in the node's log. It needs nothing of the
// engine's host, so it works on a remote DOCKER_HOST too.
func (d *Driver) WipeNode(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	var vols []string
	for _, dk := range d.disks {
		if dk.node == name && !dk.shared {
			vols = append(vols, dk.volume)
		}
	}
	if n.dataVo != "" {
		vols = append(vols, n.dataVo)
	}
	if n.id != "" {
		n.ending()
		if err := n.removeContainer(ctx, "machine lost"); err != nil {
			return err
		}
	}
	if n.lazy != nil {
		n.lazy.PowerCut() // the lost machine's page cache goes with it
	}
	for _, v := range vols {
		if err := d.removeVolume(ctx, v); err != nil {
			return fmt.Errorf("docker: machine of %s: %w", name, err)
		}
		if err := d.volume(ctx, v, name); err != nil {
			return err
		}
	}
	if err := d.createNode(ctx, n); err != nil {
		return err
	}
	d.log("machine of %s replaced: new container %.12s, volumes %v removed and made anew", name, n.id, vols)
	return nil
}
