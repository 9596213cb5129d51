package docker

import (
	"context"
	"fmt"
	"slices"

	"github.com/lossbench/lossbench/chaos/driver"
)

var _ driver.ArgsStarter = (*Driver)(nil)

// StartWithArgs is Start with args appended to node's broker command line
// for this start only (the recovery's restart_args). A container's
// command is fixed when it is made, so the node's stopped container is
// made anew with them: the same name, labels, network and volumes (its
// data stays); the next Start makes it again without them.
func (d *Driver) StartWithArgs(ctx context.Context, name string, args []string) error {
	return d.start(ctx, name, args)
}

// withArgs makes node n's container anew with extra arguments args when
// it was made with others; it must not be running then.
func (d *Driver) withArgs(ctx context.Context, n *node, args []string) error {
	n.mu.Lock()
	same := slices.Equal(n.extra, args)
	n.mu.Unlock()
	if same || n.id == "" {
		return nil
	}
	st, err := n.inspect(ctx)
	if err != nil {
		return err
	}
	if st.State != nil && st.State.Running {
		if args == nil {
			return nil // Start of a running node: it stays as it is
		}
		return fmt.Errorf("docker: start %s with arguments %q: it is running", n.spec.Name, args)
	}
	if err := n.removeContainer(ctx, fmt.Sprintf("made anew with extra arguments %q", args)); err != nil {
		return err
	}
	n.mu.Lock()
	n.extra = slices.Clone(args)
	n.mu.Unlock()
	return d.createNode(ctx, n)
}
