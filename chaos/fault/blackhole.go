package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Blackhole holds every byte on the links between A and B, both ways, on
// open connections and new ones, without closing or refusing anything:
// a peer that stopped answering, or a half-open TCP connection. Only
// deadlines notice. When it is removed the held bytes flow on.
type Blackhole struct {
	A, B string
	toxic
}

func (f *Blackhole) Name() string { return "blackhole " + f.A + "<->" + f.B }

func (f *Blackhole) Inject(ctx context.Context, d driver.Driver) error {
	return f.inject(ctx, d, f.Name(), f.A, f.B, driver.Toxic{Kind: driver.ToxicBlackhole})
}

func (f *Blackhole) Recover(ctx context.Context, d driver.Driver) error {
	return f.recover(ctx, d, f.Name())
}
