package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// MachineLost kills a broker and wipes every disk of its node: the
// machine is gone with its local storage. Recover starts the node again
// on empty disks (a replacement machine). With MoveTo, the disks survive
// the machine instead: they are moved to the spare node MoveTo
// (driver.DiskMover: what they had not synced is lost, as in a power
// cut), and Recover starts the spare on them; the lost node stays down.
type MachineLost struct{ Node, MoveTo string }

func (f *MachineLost) Name() string { return "machine-lost " + f.Node }

// Nodes are the nodes Recover starts: the spare when the disks move.
func (f *MachineLost) Nodes() []string {
	if f.MoveTo != "" {
		return []string{f.MoveTo}
	}
	return []string{f.Node}
}

func (f *MachineLost) Inject(ctx context.Context, d driver.Driver) error {
	if f.MoveTo != "" {
		dm, ok := d.(driver.DiskMover)
		if !ok {
			return fmt.Errorf("fault: %s: moving disks to %s is unsupported by the %s driver: %w", f.Name(), f.MoveTo, d.Info().Name, driver.ErrUnsupported)
		}
		if err := d.Kill(ctx, f.Node); err != nil {
			return err
		}
		return dm.MoveDisks(ctx, f.Node, f.MoveTo)
	}
	dd, err := disks(d, f.Name())
	if err != nil {
		return err
	}
	if err := d.Kill(ctx, f.Node); err != nil {
		return err
	}
	if err := dd.WipeNode(ctx, f.Node); err != nil {
		return fmt.Errorf("fault: %s: %w", f.Name(), err)
	}
	return nil
}

func (f *MachineLost) Recover(ctx context.Context, d driver.Driver) error {
	return restart(ctx, d, f.Nodes()[0])
}
