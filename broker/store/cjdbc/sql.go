package cjdbc

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

// positionSchema creates lossbench_cjdbc, the last group a database
// applied, owned by this package. Idempotent; additive to sqlstore's
// schema, like journaled's lossbench_checkpoint.
var positionSchema = map[string][]string{
	"postgres": {
		"CREATE TABLE IF NOT EXISTS lossbench_cjdbc (id INTEGER PRIMARY KEY, applied BIGINT NOT NULL)",
		"INSERT INTO lossbench_cjdbc (id, applied) VALUES (1, 0) ON CONFLICT DO NOTHING",
	},
	"mysql": {
		"CREATE TABLE IF NOT EXISTS lossbench_cjdbc (id INTEGER PRIMARY KEY, applied BIGINT NOT NULL) ENGINE=InnoDB",
		"INSERT IGNORE INTO lossbench_cjdbc (id, applied) VALUES (1, 0)",
	},
	"sqlite": {
		"CREATE TABLE IF NOT EXISTS lossbench_cjdbc (id INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
		"INSERT INTO lossbench_cjdbc (id, applied) VALUES (1, 0) ON CONFLICT DO NOTHING",
	},
}

// copyChunk is how many messages Replace writes per statement group.
const copyChunk = 256

// SQL is a DB over a broker/sqlstore database. The sqlstore.Store gives
// the schema, Recover and Load; writes go through its WriteTx in
// transactions of this package (its own Write is never used).
type SQL struct {
	st      *sqlstore.Store
	db      *sql.DB
	dialect string
	timeout time.Duration
}

// OpenSQL opens the database opts names (creating sqlstore's schema and
// lossbench_cjdbc) as a DB, without sqlstore's writer (sqlstore.OpenShared:
// State reads the live seqs, once). opts.CommitTimeout bounds each Apply
// and Replace.
func OpenSQL(ctx context.Context, opts sqlstore.Options) (*SQL, error) {
	st, err := sqlstore.OpenShared(ctx, opts)
	if err != nil {
		return nil, err
	}
	s := &SQL{st: st, db: st.DB(), dialect: st.Dialect(), timeout: opts.CommitTimeout}
	if s.timeout == 0 {
		s.timeout = sqlstore.DefaultCommitTimeout
	}
	for _, stmt := range positionSchema[s.dialect] {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			st.Close()
			return nil, fmt.Errorf("cjdbc: create lossbench_cjdbc: %w", err)
		}
	}
	return s, nil
}

func (s *SQL) ph(i int) string {
	if s.dialect == "postgres" {
		return fmt.Sprintf("$%d", i)
	}
	return "?"
}

// State implements DB.
func (s *SQL) State(ctx context.Context) (State, error) {
	var st State
	var applied, high int64
	if err := s.db.QueryRowContext(ctx, "SELECT applied FROM lossbench_cjdbc WHERE id = 1").Scan(&applied); err != nil {
		return st, fmt.Errorf("cjdbc: read applied group: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT high FROM lossbench_seq WHERE id = 1").Scan(&high); err != nil {
		return st, fmt.Errorf("cjdbc: read high-water: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT seq FROM lossbench_msgs ORDER BY seq")
	if err != nil {
		return st, fmt.Errorf("cjdbc: read seqs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return st, fmt.Errorf("cjdbc: read seqs: %w", err)
		}
		st.Live = append(st.Live, uint64(seq))
		high = max(high, seq)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("cjdbc: read seqs: %w", err)
	}
	st.Applied, st.High = uint64(applied), uint64(high)
	return st, nil
}

func (s *SQL) tx(ctx context.Context, step string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cjdbc: %s: begin: %w", step, err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("cjdbc: %s: %w", step, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cjdbc: %s: commit: %w", step, err)
	}
	return nil
}

func (s *SQL) setApplied(ctx context.Context, tx *sql.Tx, n uint64) error {
	if _, err := tx.ExecContext(ctx, "UPDATE lossbench_cjdbc SET applied = "+s.ph(1)+" WHERE id = 1", int64(n)); err != nil {
		return fmt.Errorf("record applied group: %w", err)
	}
	return nil
}

// Apply implements DB.
func (s *SQL) Apply(ctx context.Context, gs []*Group, replayUntil uint64) error {
	if len(gs) == 0 {
		return nil
	}
	last := gs[len(gs)-1]
	return s.tx(ctx, fmt.Sprintf("groups %d-%d", gs[0].N, last.N), func(ctx context.Context, tx *sql.Tx) error {
		for _, g := range gs {
			if g.N <= replayUntil && len(g.Adds) > 0 {
				// A group's adds have consecutive seqs no other group uses.
				lo, hi := g.Adds[0].Seq, g.Adds[len(g.Adds)-1].Seq
				if _, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM lossbench_msgs WHERE seq >= %s AND seq <= %s", s.ph(1), s.ph(2)),
					int64(lo), int64(hi)); err != nil {
					return fmt.Errorf("replace replayed rows: %w", err)
				}
			}
			if err := s.st.WriteTx(ctx, tx, g.Adds, g.Acks, g.High); err != nil {
				return err
			}
		}
		return s.setApplied(ctx, tx, last.N)
	})
}

// Replace implements DB.
func (s *SQL) Replace(ctx context.Context, applied, high uint64, scan func(fn func(*store.Message) error) error) error {
	return s.tx(ctx, "copy", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM lossbench_msgs"); err != nil {
			return fmt.Errorf("empty: %w", err)
		}
		var chunk []*store.Message
		flush := func() error {
			if len(chunk) == 0 {
				return nil
			}
			err := s.st.WriteTx(ctx, tx, chunk, nil, 0)
			chunk = chunk[:0]
			return err
		}
		err := scan(func(m *store.Message) error {
			high = max(high, m.Seq)
			chunk = append(chunk, m)
			if len(chunk) >= copyChunk {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if err := s.st.WriteTx(ctx, tx, nil, nil, high); err != nil {
			return err
		}
		return s.setApplied(ctx, tx, applied)
	})
}

// Scan implements DB.
func (s *SQL) Scan(ctx context.Context, fn func(*store.Message) error) error {
	return s.st.Recover(ctx, func(m *store.Message) error {
		if m.Body == nil && m.Size > 0 {
			body, err := s.st.Load(ctx, m.Seq)
			if err != nil {
				return err
			}
			m.Body = body
		}
		return fn(m)
	})
}

// Recover implements DB.
func (s *SQL) Recover(ctx context.Context, fn func(*store.Message) error) error {
	return s.st.Recover(ctx, fn)
}

// Load implements DB.
func (s *SQL) Load(ctx context.Context, seq uint64) ([]byte, error) { return s.st.Load(ctx, seq) }

// Close implements DB.
func (s *SQL) Close() error { return s.st.Close() }

// Dialect is "postgres", "mysql" or "sqlite".
func (s *SQL) Dialect() string { return s.dialect }
