package fault

import (
	"context"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Latency delays every chunk on the links between A and B by Delay (+-
// Jitter), each direction.
type Latency struct {
	A, B          string
	Delay, Jitter time.Duration
	toxic
}

func (f *Latency) Name() string { return "latency " + f.A + "<->" + f.B }

func (f *Latency) Inject(ctx context.Context, d driver.Driver) error {
	return f.inject(ctx, d, f.Name(), f.A, f.B, driver.Toxic{Kind: driver.ToxicLatency, Latency: f.Delay, Jitter: f.Jitter})
}

func (f *Latency) Recover(ctx context.Context, d driver.Driver) error {
	return f.recover(ctx, d, f.Name())
}
