package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Reset closes every connection on the links between A and B as soon as
// data flows, for as long as it is installed.
type Reset struct {
	A, B string
	toxic
}

func (f *Reset) Name() string { return "reset " + f.A + "<->" + f.B }

func (f *Reset) Inject(ctx context.Context, d driver.Driver) error {
	return f.inject(ctx, d, f.Name(), f.A, f.B, driver.Toxic{Kind: driver.ToxicReset})
}

func (f *Reset) Recover(ctx context.Context, d driver.Driver) error {
	return f.recover(ctx, d, f.Name())
}
