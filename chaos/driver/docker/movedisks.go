package docker

import (
	"context"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
)

var _ driver.DiskMover = (*Driver)(nil)

// MoveDisks is machine-lost move_disks_to on containers, as the local
// driver's: what from's lazyfs had not synced is dropped, from's
// container removed, and to's container made anew on from's volumes,
// its data folder through the same lazyfs mount; from cannot start
// again. Without lazyfs under from (no power cut or move named it) the
// move is unsupported: what from had not synced would survive, in the
// host's page cache.
func (d *Driver) MoveDisks(ctx context.Context, from, to string) error {
	src, dst := d.nodes[from], d.nodes[to]
	if src == nil || dst == nil {
		return fmt.Errorf("docker: move disks of %q to %q: %w", from, to, driver.ErrUnknown)
	}
	if d.Running(from) {
		return fmt.Errorf("docker: move disks of %s: it is still running", from)
	}
	if d.Running(to) {
		return fmt.Errorf("docker: move disks of %s to %s: %s is already running", from, to, to)
	}
	if src.moved != "" {
		return fmt.Errorf("docker: move disks of %s to %s: they moved to %s already", from, to, src.moved)
	}
	if src.lazy == nil {
		return fmt.Errorf("docker: move disks of %s to %s: %s's data folder is not on lazyfs (no power-cut or move named it when the driver was made), so what it had not synced would survive the lost machine: %w",
			from, to, from, driver.ErrUnsupported)
	}
	st := src.lazy.PowerCut()
	d.log("machine %s lost: dropped %d unsynced bytes; its disks move to %s", from, st.LastDropped, to)
	src.ending()
	if err := src.removeContainer(ctx, "machine lost, disks moved to "+to); err != nil {
		return err
	}
	for _, dk := range d.disks {
		if dk.node == from && !dk.shared {
			dk.node, dk.nodes = to, []string{to}
		}
	}
	dst.data, dst.dataDisk, dst.lazy, dst.backing = src.data, src.dataDisk, src.lazy, src.backing
	src.lazy, src.backing, src.moved = nil, "", to
	if err := dst.removeContainer(ctx, "made anew on the disks of "+from); err != nil {
		return err
	}
	return d.createNode(ctx, dst)
}

// removeContainer removes node n's container, if it has one (SIGKILL if
// it runs), keeping its output for the node's log with a line saying
// why.
func (n *node) removeContainer(ctx context.Context, why string) error {
	if n.id == "" {
		return nil
	}
	n.past += n.logs(ctx, "all") + "--- container " + n.id[:12] + " removed: " + why + " ---\n"
	if _, err := n.d.cli.ContainerRemove(ctx, n.id, client.ContainerRemoveOptions{Force: true}); err != nil {
		return fmt.Errorf("docker: node %s: remove container (%s): %w", n.spec.Name, why, err)
	}
	n.id = ""
	return nil
}
