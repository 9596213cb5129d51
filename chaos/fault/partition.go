package fault

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
)

// Partition cuts every link between A and B (sites or nodes; B =
// driver.Any isolates A): live connections are closed and new ones
// refused (reset as soon as accepted). Recover heals it.
type Partition struct{ A, B string }

func (f *Partition) Name() string {
	if f.B == driver.Any {
		return "partition " + f.A
	}
	return "partition " + f.A + "<->" + f.B
}

func (f *Partition) Inject(ctx context.Context, d driver.Driver) error {
	dl, err := links(d, f.Name())
	if err != nil {
		return err
	}
	return dl.Cut(ctx, f.A, f.B)
}

func (f *Partition) Recover(ctx context.Context, d driver.Driver) error {
	dl, err := links(d, f.Name())
	if err != nil {
		return err
	}
	return dl.Heal(ctx, f.A, f.B)
}
