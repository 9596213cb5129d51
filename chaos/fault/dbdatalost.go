package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DBDataLost crashes a database server and destroys its data, as the
// loss of its disk would: what it committed is gone with it, so a
// message only it held is lost unless another database or a replica has
// it. Recover starts it again on an empty data directory (the run's
// database created again, without tables). Like DBLost it is a NodeDown
// fault whose "node" is the database.
type DBDataLost struct{ DB string }

func (f *DBDataLost) Name() string    { return "db-data-lost " + f.DB }
func (f *DBDataLost) Nodes() []string { return []string{f.DB} }

func (f *DBDataLost) Inject(ctx context.Context, d driver.Driver) error {
	dw, ok := d.(driver.DatabaseWiper)
	if !ok {
		return fmt.Errorf("fault: %s: destroying a database's data: %w", f.Name(), driver.ErrUnsupported)
	}
	return dw.WipeDB(ctx, f.DB)
}

func (f *DBDataLost) Recover(ctx context.Context, d driver.Driver) error {
	dd, err := databases(d, f.Name())
	if err != nil {
		return err
	}
	return dd.RestartDB(ctx, f.DB)
}
