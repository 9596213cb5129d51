package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lossbench/lossbench/broker/store"
)

// This file is what other packages that share the database with the store
// use: the journaled-jdbc store (broker/store/journaled), which checkpoints
// into the store's tables with its own transactions, and the lease lock
// (broker/lease), which keeps the lossbench_lock row and fences the store's
// commits through Options.Fence.

// Fence is called inside every group commit's transaction, before the
// commit writes anything (see Options.Fence). It returns an error when the
// commit must not happen, e.g. because another broker has taken the lease.
type Fence func(ctx context.Context, tx *sql.Tx) error

// DB returns the store's database handle, for transactions of other
// packages on the same tables (they must not write lossbench_msgs while
// this store's Write is in use).
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns "postgres", "mysql" or "sqlite".
func (s *Store) Dialect() string { return s.d.name }

// OpenDB opens the database opts names the way Open does (the same driver,
// DSN rewriting and SQLite pragmas) without creating the schema or a store.
// It also returns the dialect, as Dialect does.
func OpenDB(opts Options) (*sql.DB, string, error) {
	d, dsn, err := pickDialect(opts)
	if err != nil {
		return nil, "", err
	}
	db, err := openSQL(d, dsn)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: open %s: %w", d.name, err)
	}
	db.SetMaxOpenConns(d.maxConns)
	db.SetMaxIdleConns(d.maxConns)
	return db, d.name, nil
}

// Migrate creates or migrates the schema (messages, high-water and lock
// tables) on db, for the dialect OpenDB returned. It is idempotent.
func Migrate(ctx context.Context, db *sql.DB, name string) error {
	for _, d := range []*dialect{postgresDialect, mysqlDialect, sqliteDialect} {
		if d.name == name {
			return migrate(ctx, db, d)
		}
	}
	return fmt.Errorf("sqlstore: unknown dialect %q", name)
}

// fencedCommit writes a group like the dialect's commit, inside an explicit
// transaction that first calls fence. On PostgreSQL that is BEGIN, the
// fence's statements, the group statement and COMMIT instead of the one
// statement of an unfenced commit.
func (s *Store) fencedCommit(ctx context.Context, conn *sql.Conn, rs *rows) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return sqlErr("begin", err)
	}
	if err := s.opts.Fence(ctx, tx); err != nil {
		_ = tx.Rollback()
		return sqlErr("fence", err)
	}
	if s.d.name == "postgres" {
		acks := rs.acks
		if acks == nil {
			acks = []int64{}
		}
		_, err = tx.ExecContext(ctx, postgresGroupSQL, rs.seqs, rs.queues, rs.headers, rs.bodies, acks, rs.high)
		if err != nil {
			err = sqlErr("write", err)
		}
	} else {
		err = txWrite(ctx, tx, rs)
	}
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return sqlErr("commit", err)
	}
	return nil
}

// WriteTx writes adds, with the Seqs they already carry, and deletes the
// rows of acks inside tx, and raises the high-water mark to at least high:
// the rows a group commit would write, for a caller that assigns seqs
// itself and commits on its own (the journaled store's checkpoint). It
// does not change the Store's in-memory state, so the caller must not use
// Write on the same Store.
func (s *Store) WriteTx(ctx context.Context, tx *sql.Tx, adds []*store.Message, acks []uint64, high uint64) error {
	rs := rows{high: int64(high)}
	for _, m := range adds {
		body := m.Body
		if body == nil {
			body = []byte{}
		}
		rs.seqs = append(rs.seqs, int64(m.Seq))
		rs.queues = append(rs.queues, []byte(m.Queue))
		rs.headers = append(rs.headers, encodeHeaders(m.Headers))
		rs.bodies = append(rs.bodies, body)
	}
	rs.acks = make([]int64, len(acks))
	for i, seq := range acks {
		rs.acks[i] = int64(seq)
	}
	if s.d.name != "postgres" {
		return txWrite(ctx, tx, &rs)
	}
	if _, err := tx.ExecContext(ctx, postgresGroupSQL, rs.seqs, rs.queues, rs.headers, rs.bodies, rs.acks, rs.high); err != nil {
		return sqlErr("write", err)
	}
	return nil
}
