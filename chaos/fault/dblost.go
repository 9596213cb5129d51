package fault

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/chaos/driver"
)

// DBLost crashes a database server with SIGKILL: what it committed
// survives, every broker connection to it breaks. Recover starts it again
// on its data. It is a NodeDown fault whose "node" is the database, so the
// recovery phase restarts it only when the scenario repairs it.
type DBLost struct{ DB string }

func (f *DBLost) Name() string    { return "db-lost " + f.DB }
func (f *DBLost) Nodes() []string { return []string{f.DB} }

func (f *DBLost) Inject(ctx context.Context, d driver.Driver) error {
	dd, err := databases(d, f.Name())
	if err != nil {
		return err
	}
	return dd.KillDB(ctx, f.DB)
}

func (f *DBLost) Recover(ctx context.Context, d driver.Driver) error {
	dd, err := databases(d, f.Name())
	if err != nil {
		return err
	}
	return dd.RestartDB(ctx, f.DB)
}

func databases(d driver.Driver, fault string) (driver.Databases, error) {
	dd, ok := d.(driver.Databases)
	if !ok {
		return nil, fmt.Errorf("fault: %s: database faults: %w", fault, driver.ErrUnsupported)
	}
	return dd, nil
}
