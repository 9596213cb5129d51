package dbserver

import (
	"context"
	"fmt"
)

// Available reports whether the binaries for kind are installed; the error
// says how to install them (a test skips with it).
func Available(kind Kind) error {
	switch kind {
	case Postgres:
		_, err := postgresBinDir("")
		return err
	case MariaDB:
		_, _, err := mariaBins("")
		return err
	}
	return ErrNotInstalled
}

// CreateDatabaseAt creates database name (if missing) on a server of kind
// that adminDSN reaches (a server this package did not start: a
// container's); it doubles as a readiness probe.
func CreateDatabaseAt(ctx context.Context, kind Kind, adminDSN, name string) error {
	switch kind {
	case Postgres:
		return pgCreateDB(ctx, adminDSN, name)
	case MariaDB:
		return mariaCreateDB(ctx, adminDSN, name)
	}
	return fmt.Errorf("dbserver: kind %q: %w", kind, ErrNotInstalled)
}
