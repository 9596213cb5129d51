package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// SchemaVersion is the schema version this package creates and expects.
const SchemaVersion = 1

// migrate brings the schema to the dialect's latest version. Every
// statement is idempotent (CREATE ... IF NOT EXISTS, insert-unless-present),
// so two brokers starting on one database at once, or a migration cut short
// (MariaDB commits each DDL statement on its own), end in the same schema.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	if _, err := db.ExecContext(ctx, d.versionTable); err != nil {
		return fmt.Errorf("sqlstore: create schema_version: %w", err)
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > len(d.migrations) {
		return fmt.Errorf("sqlstore: database schema version %d is newer than this broker's %d", v, len(d.migrations))
	}
	for ; v < len(d.migrations); v++ {
		for _, stmt := range d.migrations[v] {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqlstore: migrate to v%d: %w", v+1, err)
			}
		}
		if _, err := db.ExecContext(ctx, d.recordVersion, v+1); err != nil {
			return fmt.Errorf("sqlstore: record schema v%d: %w", v+1, err)
		}
	}
	return nil
}

// schemaVersion returns the version recorded last (0 for an empty database).
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM lossbench_schema_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	return int(v.Int64), nil
}
