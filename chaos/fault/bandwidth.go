package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Bandwidth limits the links between A and B to KBPerSec, each direction.
type Bandwidth struct {
	A, B     string
	KBPerSec int64
	toxic
}

func (f *Bandwidth) Name() string { return "bandwidth " + f.A + "<->" + f.B }

func (f *Bandwidth) Inject(ctx context.Context, d driver.Driver) error {
	return f.inject(ctx, d, f.Name(), f.A, f.B, driver.Toxic{Kind: driver.ToxicBandwidth, KBPerSec: f.KBPerSec})
}

func (f *Bandwidth) Recover(ctx context.Context, d driver.Driver) error {
	return f.recover(ctx, d, f.Name())
}
