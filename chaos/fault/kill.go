package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Kill ends a broker with SIGKILL: nothing is flushed, what the OS had
// accepted (the page cache) survives. Recover restarts it.
type Kill struct{ Node string }

func (f *Kill) Name() string    { return "kill " + f.Node }
func (f *Kill) Nodes() []string { return []string{f.Node} }

func (f *Kill) Inject(ctx context.Context, d driver.Driver) error { return d.Kill(ctx, f.Node) }

func (f *Kill) Recover(ctx context.Context, d driver.Driver) error { return restart(ctx, d, f.Node) }
