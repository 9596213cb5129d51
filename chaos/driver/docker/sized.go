package docker

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// A size-limited disk (a disk with a size, for disk-full) is a named
// volume of the engine's local driver mounted as a tmpfs of that size
// (type=tmpfs, o=size=N). The engine mounts such a volume when a
// container using it starts and unmounts it, emptying the tmpfs, when
// the last one stops: a killed node would lose its disk. So a holder
// container (the refbroker image's witness on 127.0.0.1, no network,
// role disk-holder) keeps every sized volume mounted from its creation
// to its removal, and the disk outlives its node's containers as a real
// disk does. Like wipeVolume, FillDisk works in the volume's folder on
// the engine's host.

// sizedVolume makes volume name a tmpfs of size bytes, labelled for
// node, and starts its holder.
func (d *Driver) sizedVolume(ctx context.Context, name, node string, size int64) error {
	labels := d.labels("disk", d.siteOf(node), node)
	if _, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels, Driver: "local",
		DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=" + strconv.FormatInt(size, 10)}}); err != nil {
		return fmt.Errorf("docker: volume %s (tmpfs of %d bytes): %w", name, size, err)
	}
	req := tc.GenericContainerRequest{ContainerRequest: tc.ContainerRequest{
		Image: d.img.Ref, Name: name + "-holder", Entrypoint: []string{"/refbroker"},
		Cmd:    []string{"witness", "--listen", "127.0.0.1:1"},
		Labels: d.labels("disk-holder", d.siteOf(node), node),
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = "none"
			hc.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/disk"}}
		},
	}, Started: true}
	c, err := tc.GenericContainer(ctx, req)
	if c != nil {
		d.holders[name] = c.GetContainerID()
	}
	if err != nil {
		return fmt.Errorf("docker: volume %s: its holder container: %w", name, err)
	}
	return nil
}

// removeVolume removes volume name, and first its holder if it is sized.
func (d *Driver) removeVolume(ctx context.Context, name string) error {
	if id, ok := d.holders[name]; ok {
		if _, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			return fmt.Errorf("docker: volume %s: remove its holder container: %w", name, err)
		}
		delete(d.holders, name)
	}
	if _, err := d.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
		return fmt.Errorf("docker: remove volume %s: %w", name, err)
	}
	return nil
}

// siteOf is node's site, "" for an unknown node.
func (d *Driver) siteOf(node string) string {
	for _, n := range d.cfg.Topology.Nodes {
		if n.Name == node {
			return n.Site
		}
	}
	return ""
}

// volumeDir is the folder of volume name on the engine's host, or an
// error wrapping ErrUnsupported when it is not on this machine.
func (d *Driver) volumeDir(ctx context.Context, name, what string) (string, error) {
	res, err := d.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("docker: volume %s: %w", name, err)
	}
	dir := res.Volume.Mountpoint
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("docker: %s volume %s: its folder %s is not on this machine (a remote DOCKER_HOST): %v: %w", what, name, dir, err, driver.ErrUnsupported)
	}
	return dir, nil
}

// FillDisk fills a sized disk's tmpfs until writes fail with ENOSPC (the
// broker's next write then fails); a disk without a size is refused, as
// on local: filling the engine's real disk is not a fault we inject.
func (d *Driver) FillDisk(ctx context.Context, name string) error {
	dk, err := d.disk(name)
	if err != nil {
		return err
	}
	if dk.size <= 0 {
		return fmt.Errorf("docker: disk-full on %s needs a disk with a size (a tmpfs volume): %w", name, driver.ErrUnsupported)
	}
	dir, err := d.volumeDir(ctx, dk.volume, "fill")
	if err != nil {
		return err
	}
	if err := osutil.Fill(ctx, dir); err != nil {
		return fmt.Errorf("docker: fill disk %s: %w", name, err)
	}
	d.log("disk %s full", name)
	return nil
}

// FreeDisk removes what FillDisk wrote.
func (d *Driver) FreeDisk(ctx context.Context, name string) error {
	dk, err := d.disk(name)
	if err != nil {
		return err
	}
	if dk.size <= 0 {
		return nil
	}
	dir, err := d.volumeDir(ctx, dk.volume, "free")
	if err != nil {
		return err
	}
	if err := osutil.Unfill(dir); err != nil {
		return fmt.Errorf("docker: free disk %s: %w", name, err)
	}
	d.log("disk %s freed", name)
	return nil
}
