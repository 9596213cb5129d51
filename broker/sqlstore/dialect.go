package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// dialect is what differs between the databases: DDL, placeholders and
// how a group commit is written.
type dialect struct {
	name     string // "postgres", "mysql", "sqlite"
	driver   string // database/sql driver name
	maxConns int
	// inFlight is how many group commits may be under way at once, each
	// on its own connection.
	inFlight int
	// ph returns the i-th (1-based) placeholder.
	ph func(i int) string
	// migrations[i] takes the schema from version i to i+1; every statement
	// is idempotent, so a migration cut short is simply run again.
	migrations [][]string
	// versionTable creates lossbench_schema_version; recordVersion inserts
	// a version unless present (one placeholder).
	versionTable, recordVersion string
	// commit writes one group in one transaction.
	commit func(ctx context.Context, conn *sql.Conn, rs *rows) error
}

// Group-commit limits for the statements of one commit on MariaDB and
// SQLite (PostgreSQL sends one statement with arrays).
const (
	maxRowsPerInsert  = 500
	maxBytesPerInsert = 4 << 20
	maxSeqsPerDelete  = 1000
	// maxGroupBytes stops a group from taking more waiting batches once
	// their bodies reach it (the first batch is always taken whole).
	maxGroupBytes = 16 << 20
)

func pickDialect(opts Options) (*dialect, string, error) {
	switch strings.ToLower(opts.Driver) {
	case "postgres", "postgresql", "pgx", "pg":
		if opts.DSN == "" {
			return nil, "", fmt.Errorf("sqlstore: postgres needs a DSN")
		}
		dsn := opts.DSN
		if t := txIdleTimeout(opts); t > 0 {
			dsn = withPostgresParam(dsn, "idle_in_transaction_session_timeout", strconv.FormatInt(t.Milliseconds(), 10))
		}
		return postgresDialect, dsn, nil
	case "mysql", "mariadb":
		if opts.DSN == "" {
			return nil, "", fmt.Errorf("sqlstore: mysql needs a DSN")
		}
		one, addrs := splitMySQLAddrs(opts.DSN)
		cfg, err := mysql.ParseDSN(one)
		if err != nil {
			return nil, "", fmt.Errorf("sqlstore: mysql DSN: %w", err)
		}
		// Placeholders filled in by the client: a statement is one round
		// trip instead of prepare, execute and close.
		cfg.InterpolateParams = true
		// Its COMMIT ignores the context: socket timeouts bound it.
		if t := commitTimeout(opts); t > 0 {
			if cfg.ReadTimeout == 0 {
				cfg.ReadTimeout = t
			}
			if cfg.WriteTimeout == 0 {
				cfg.WriteTimeout = t
			}
		}
		if t := txIdleTimeout(opts); t > 0 {
			if _, set := cfg.Params["idle_transaction_timeout"]; !set {
				if cfg.Params == nil {
					cfg.Params = map[string]string{}
				}
				cfg.Params["idle_transaction_timeout"] = strconv.FormatInt(int64((t+time.Second-1)/time.Second), 10)
			}
		}
		dsn := cfg.FormatDSN()
		if len(addrs) > 1 {
			// Every server again, for openSQL's failover connector.
			dsn = strings.Replace(dsn, "("+cfg.Addr+")", "("+strings.Join(addrs, ",")+")", 1)
		}
		return mysqlDialect, dsn, nil
	case "", "sqlite", "sqlite3":
		if opts.DSN != "" {
			return sqliteDialect, opts.DSN, nil
		}
		if opts.Path == "" {
			return nil, "", fmt.Errorf("sqlstore: sqlite needs a Path or a DSN")
		}
		if strings.ContainsAny(opts.Path, "?#") {
			return nil, "", fmt.Errorf("sqlstore: sqlite path %q: '?' and '#' are not allowed", opts.Path)
		}
		if err := os.MkdirAll(filepath.Dir(opts.Path), 0o755); err != nil {
			return nil, "", fmt.Errorf("sqlstore: %w", err)
		}
		// WAL with synchronous=FULL: a COMMIT returns after the WAL is
		// fsynced. BEGIN IMMEDIATE: the writer takes the lock up front.
		return sqliteDialect, "file:" + opts.Path +
			"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate", nil
	}
	return nil, "", fmt.Errorf("sqlstore: unknown driver %q (postgres, mysql, sqlite)", opts.Driver)
}

// commitTimeout is opts.CommitTimeout with its default applied; 0 means
// none.
func commitTimeout(opts Options) time.Duration {
	return limit(opts.CommitTimeout, DefaultCommitTimeout)
}

// txIdleTimeout is opts.TxIdleTimeout with its default (the commit
// deadline) applied; 0 means the server's own.
func txIdleTimeout(opts Options) time.Duration { return limit(opts.TxIdleTimeout, commitTimeout(opts)) }

// limit reads a duration option: 0 is def, negative is none (0).
func limit(set, def time.Duration) time.Duration {
	switch {
	case set == 0:
		return def
	case set < 0:
		return 0
	}
	return set
}

// withPostgresParam adds a run-time parameter (pgx sends keys it does not
// know to the server) to a PostgreSQL DSN, URL or key=value, unless the
// DSN names it already.
func withPostgresParam(dsn, key, value string) string {
	if strings.Contains(dsn, key) {
		return dsn
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + key + "=" + value
	}
	return dsn + " " + key + "=" + value
}

func dollar(i int) string                 { return "$" + strconv.Itoa(i) }
func question(int) string                 { return "?" }
func sqlErr(step string, err error) error { return fmt.Errorf("%s: %w", step, err) }

var postgresDialect = &dialect{
	name: "postgres", driver: "pgx", maxConns: 8, inFlight: 2, ph: dollar,
	versionTable:  "CREATE TABLE IF NOT EXISTS lossbench_schema_version (version INTEGER PRIMARY KEY)",
	recordVersion: "INSERT INTO lossbench_schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING",
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS lossbench_msgs (
			seq BIGINT PRIMARY KEY, queue BYTEA NOT NULL, headers BYTEA NOT NULL, body BYTEA NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS lossbench_seq (id INTEGER PRIMARY KEY, high BIGINT NOT NULL)`,
		`INSERT INTO lossbench_seq (id, high) VALUES (1, 0) ON CONFLICT DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS lossbench_lock (
			id INTEGER PRIMARY KEY, owner VARCHAR(250) NOT NULL, epoch BIGINT NOT NULL, expires_ms BIGINT NOT NULL)`,
		`INSERT INTO lossbench_lock (id, owner, epoch, expires_ms) VALUES (1, '', 0, 0) ON CONFLICT DO NOTHING`,
	}},
	commit: postgresCommit,
}

// postgresGroupSQL writes a whole group in one statement, so in one round
// trip and one implicit transaction: the WITH's data-modifying parts all
// run, and the statement commits (with synchronous_commit=on, after the
// WAL flush) before the server answers. Its text never changes, so pgx
// prepares it once per connection.
const postgresGroupSQL = `WITH ins AS (
	INSERT INTO lossbench_msgs (seq, queue, headers, body)
	SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[])
), del AS (
	DELETE FROM lossbench_msgs WHERE seq = ANY($5::bigint[])
)
UPDATE lossbench_seq SET high = $6::bigint WHERE id = 1 AND high < $6::bigint`

func postgresCommit(ctx context.Context, conn *sql.Conn, rs *rows) error {
	acks := rs.acks
	if acks == nil {
		acks = []int64{}
	}
	_, err := conn.ExecContext(ctx, postgresGroupSQL, rs.seqs, rs.queues, rs.headers, rs.bodies, acks, rs.high)
	return err
}

var mysqlDialect = &dialect{
	name: "mysql", driver: "mysql", maxConns: 8, inFlight: 1, ph: question,
	versionTable:  "CREATE TABLE IF NOT EXISTS lossbench_schema_version (version INTEGER PRIMARY KEY) ENGINE=InnoDB",
	recordVersion: "INSERT IGNORE INTO lossbench_schema_version (version) VALUES (?)",
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS lossbench_msgs (
			seq BIGINT PRIMARY KEY, queue BLOB NOT NULL, headers MEDIUMBLOB NOT NULL, body LONGBLOB NOT NULL) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS lossbench_seq (id INTEGER PRIMARY KEY, high BIGINT NOT NULL) ENGINE=InnoDB`,
		`INSERT IGNORE INTO lossbench_seq (id, high) VALUES (1, 0)`,
		`CREATE TABLE IF NOT EXISTS lossbench_lock (
			id INTEGER PRIMARY KEY, owner VARCHAR(250) NOT NULL, epoch BIGINT NOT NULL, expires_ms BIGINT NOT NULL) ENGINE=InnoDB`,
		`INSERT IGNORE INTO lossbench_lock (id, owner, epoch, expires_ms) VALUES (1, '', 0, 0)`,
	}},
	commit: txCommit,
}

var sqliteDialect = &dialect{
	name: "sqlite", driver: "sqlite", maxConns: 4, inFlight: 1, ph: question,
	versionTable:  "CREATE TABLE IF NOT EXISTS lossbench_schema_version (version INTEGER PRIMARY KEY)",
	recordVersion: "INSERT INTO lossbench_schema_version (version) VALUES (?) ON CONFLICT DO NOTHING",
	migrations: [][]string{{
		// INTEGER PRIMARY KEY: seq is the rowid, no separate index.
		`CREATE TABLE IF NOT EXISTS lossbench_msgs (
			seq INTEGER PRIMARY KEY, queue BLOB NOT NULL, headers BLOB NOT NULL, body BLOB NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS lossbench_seq (id INTEGER PRIMARY KEY, high INTEGER NOT NULL)`,
		`INSERT INTO lossbench_seq (id, high) VALUES (1, 0) ON CONFLICT DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS lossbench_lock (
			id INTEGER PRIMARY KEY, owner TEXT NOT NULL, epoch INTEGER NOT NULL, expires_ms INTEGER NOT NULL)`,
		`INSERT INTO lossbench_lock (id, owner, epoch, expires_ms) VALUES (1, '', 0, 0) ON CONFLICT DO NOTHING`,
	}},
	commit: txCommit,
}

// txCommit writes a group as BEGIN, multi-row INSERTs, DELETE ... IN, the
// high-water UPDATE and COMMIT (MariaDB, SQLite). For a group of fewer
// than maxRowsPerInsert adds and maxSeqsPerDelete acks that is one
// statement of each kind.
func txCommit(ctx context.Context, conn *sql.Conn, rs *rows) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return sqlErr("begin", err)
	}
	if err := txWrite(ctx, tx, rs); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return sqlErr("commit", err)
	}
	return nil
}

func txWrite(ctx context.Context, tx *sql.Tx, rs *rows) error {
	var q strings.Builder
	args := make([]any, 0, 4*min(len(rs.seqs), maxRowsPerInsert))
	for i := 0; i < len(rs.seqs); {
		q.Reset()
		args = args[:0]
		q.WriteString("INSERT INTO lossbench_msgs (seq, queue, headers, body) VALUES ")
		size := 0
		for j := i; i < len(rs.seqs) && i-j < maxRowsPerInsert && (i == j || size+len(rs.bodies[i]) <= maxBytesPerInsert); i++ {
			if i > j {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?)")
			args = append(args, rs.seqs[i], rs.queues[i], rs.headers[i], rs.bodies[i])
			size += len(rs.bodies[i])
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return sqlErr("insert", err)
		}
	}
	for i := 0; i < len(rs.acks); i += maxSeqsPerDelete {
		chunk := rs.acks[i:min(i+maxSeqsPerDelete, len(rs.acks))]
		q.Reset()
		args = args[:0]
		q.WriteString("DELETE FROM lossbench_msgs WHERE seq IN (")
		for k, seq := range chunk {
			if k > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
			args = append(args, seq)
		}
		q.WriteByte(')')
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return sqlErr("delete", err)
		}
	}
	if rs.high > 0 {
		if _, err := tx.ExecContext(ctx, "UPDATE lossbench_seq SET high = ? WHERE id = 1 AND high < ?", rs.high, rs.high); err != nil {
			return sqlErr("update high-water", err)
		}
	}
	return nil
}
