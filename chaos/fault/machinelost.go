package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// MachineLost kills a broker and wipes every disk of its node: the
// machine is gone with its local storage. Recover starts the node again
// on empty disks (a replacement machine).
type MachineLost struct{ Node string }

func (f *MachineLost) Name() string    { return "machine-lost " + f.Node }
func (f *MachineLost) Nodes() []string { return []string{f.Node} }

func (f *MachineLost) Inject(ctx context.Context, d driver.Driver) error {
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
	return restart(ctx, d, f.Node)
}
