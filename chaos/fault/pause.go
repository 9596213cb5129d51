package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Pause freezes a broker with SIGSTOP: its connections stay open but
// nothing answers, like a long GC pause or a hung machine. Recover sends
// SIGCONT.
type Pause struct{ Node string }

func (f *Pause) Name() string { return "pause " + f.Node }

func (f *Pause) Inject(ctx context.Context, d driver.Driver) error { return d.Pause(ctx, f.Node) }

func (f *Pause) Recover(ctx context.Context, d driver.Driver) error { return d.Resume(ctx, f.Node) }
