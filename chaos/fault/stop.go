package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Stop shuts a broker down with SIGTERM (a clean shutdown, killed if it
// takes too long). Recover restarts it.
type Stop struct{ Node string }

func (f *Stop) Name() string    { return "stop " + f.Node }
func (f *Stop) Nodes() []string { return []string{f.Node} }

func (f *Stop) Inject(ctx context.Context, d driver.Driver) error { return d.Stop(ctx, f.Node) }

func (f *Stop) Recover(ctx context.Context, d driver.Driver) error { return restart(ctx, d, f.Node) }
