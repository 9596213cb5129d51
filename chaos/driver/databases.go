package driver

import "context"

// Databases is a driver that runs the topology's database servers and can
// fault them. Names are the topology's database names.
type Databases interface {
	// KillDB crashes database server db (SIGKILL): what it committed
	// survives, connections break.
	KillDB(ctx context.Context, db string) error
	// RestartDB starts a killed db again on its data and waits until it
	// accepts connections (after crash recovery); a running db is left
	// as it is.
	RestartDB(ctx context.Context, db string) error
}
