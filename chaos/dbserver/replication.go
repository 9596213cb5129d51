package dbserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PostgreSQL streaming replication: a standby is a new base backup of its
// primary (pg_basebackup, the WAL streamed alongside) that keeps
// replaying the primary's WAL as it streams in. The primary is reached at
// a source address the caller gives (the harness passes a link proxy, so
// the replication connection can be cut or slowed). A standby is
// synchronous when its primary names it in synchronous_standby_names:
// a COMMIT on the primary then returns only once the standby has flushed
// its WAL (synchronous_commit=on). A standby answers read-only queries
// (hot standby); Promote makes it a primary.
//
// The replication settings that change at run time (which standbys are
// synchronous) are written with ALTER SYSTEM, into postgresql.auto.conf:
// a `-c` on the command line would override it.

// WithReplication gives a server the settings every member of a
// replicated PostgreSQL cluster runs with (replicationSettings); later
// WithSetting options still override them.
func WithReplication() Option {
	return func(c *config) { c.settings = append(c.settings, replicationSettings...) }
}

// replicationSettings: WAL kept for a standby that lags or whose link is
// cut for a while (no replication slot, so a standby lost for good never
// fills the primary's disk), and hint bits WAL-logged so that pg_rewind
// could be used on an old primary.
var replicationSettings = [][2]string{
	{"wal_level", "replica"},
	{"max_wal_senders", "10"},
	{"wal_keep_size", "512MB"},
	{"wal_log_hints", "on"},
	{"hot_standby", "on"},
	// A standby whose primary vanished retries the connection soon.
	{"wal_retrieve_retry_interval", "500ms"},
	{"wal_receiver_timeout", "10s"},
	{"wal_sender_timeout", "10s"},
}

// ReplicationFlags are replicationSettings as postgres flags (-c k=v),
// for a server the caller starts itself (a container).
func ReplicationFlags() []string {
	var f []string
	for _, kv := range replicationSettings {
		f = append(f, "-c", kv[0]+"="+kv[1])
	}
	return f
}

// StartPostgresStandby makes a new standby of the PostgreSQL primary
// reachable at source (host:port): a base backup into dir/pgdata, then
// the server, streaming from source under application name app (the name
// synchronous_standby_names refers to). It returns once the standby
// accepts read-only connections. Like StartPostgres, on error it returns
// the partial server for Close.
func StartPostgresStandby(ctx context.Context, dir, source, app string, opts ...Option) (*Server, error) {
	s, err := newPostgres(dir, opts)
	if err != nil {
		return s, err
	}
	if err := s.baseBackup(ctx, source, app); err != nil {
		return s, err
	}
	return s, s.startNew(ctx)
}

// RebuildStandby turns the server, whatever it was (an old primary above
// all: its data may hold WAL its new primary never had), into a new
// standby of the primary at source: it stops it, removes its data
// directory, takes a new base backup and starts it. Its port stays.
func (s *Server) RebuildStandby(ctx context.Context, source, app string) error {
	if s.Kind != Postgres {
		return fmt.Errorf("dbserver: RebuildStandby: %s is not PostgreSQL", s.Kind)
	}
	if s.Running() {
		if err := s.Kill(); err != nil {
			return err
		}
	}
	if err := s.baseBackup(ctx, source, app); err != nil {
		return err
	}
	return s.start(ctx)
}

// baseBackup replaces the data directory with a base backup of the
// primary at source, configured to stream from it as app.
func (s *Server) baseBackup(ctx context.Context, source, app string) error {
	host, port, err := net.SplitHostPort(source)
	if err != nil {
		return fmt.Errorf("dbserver: standby source %q: %w", source, err)
	}
	if err := os.RemoveAll(s.dataDir); err != nil {
		return fmt.Errorf("dbserver: remove old data: %w", err)
	}
	conninfo := fmt.Sprintf("host=%s port=%s user=postgres application_name=%s connect_timeout=5", host, port, app)
	// pg_basebackup creates the data directory: its parent must be the
	// server user's.
	if err := s.chownDir(); err != nil {
		return err
	}
	if err := run(ctx, s.cred, s.Dir, filepath.Join(s.binDir, "pg_basebackup"),
		"-D", s.dataDir, "-d", conninfo, "--wal-method=stream", "--checkpoint=fast",
		// The standby's first start fsyncs its whole data directory
		// before it replays (the backup's control file says it was
		// not shut down), so the backup need not be synced twice.
		"--no-sync", "--write-recovery-conf"); err != nil {
		return err
	}
	// -R wrote standby.signal and a primary_conninfo; ours, later in
	// the file, wins and names the application. The primary's own
	// synchronous_standby_names came with the backup: a standby has
	// none until it is promoted and told.
	auto := filepath.Join(s.dataDir, "postgresql.auto.conf")
	f, err := os.OpenFile(auto, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("dbserver: standby config: %w", err)
	}
	_, err = fmt.Fprintf(f, "primary_conninfo = '%s'\nsynchronous_standby_names = ''\n", conninfo)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dbserver: standby config: %w", err)
	}
	return nil
}

// chownDir gives s.Dir to the server's OS user (when running as root).
func (s *Server) chownDir() error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(s.Dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("dbserver: chown: %w", err)
	}
	return nil
}

// PGAdmin is the data source name of a PostgreSQL server's postgres
// database, as its superuser, wherever the server runs (a Server's
// Admin, a container's address): the replication queries and controls
// below, for a caller that does not run the server itself.
type PGAdmin string

// PGAdminAt is the PGAdmin of the PostgreSQL server at addr (host:port),
// trusting user postgres.
func PGAdminAt(addr string) PGAdmin {
	return PGAdmin("postgres://postgres@" + addr + "/postgres?sslmode=disable")
}

// Admin is s's PGAdmin; an error for a server that is not PostgreSQL.
func (s *Server) Admin() (PGAdmin, error) {
	if s.Kind != Postgres {
		return "", fmt.Errorf("dbserver: %s: replication is PostgreSQL's", s.Kind)
	}
	return PGAdmin(s.dsn("postgres")), nil
}

// admin opens a short-lived connection to the server's postgres database.
func (a PGAdmin) admin(ctx context.Context, f func(*sql.Conn) error) error {
	db, err := sql.Open("pgx", string(a)+"&connect_timeout=5")
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// InRecovery reports whether the server is a standby (replaying WAL)
// rather than a primary.
func (a PGAdmin) InRecovery(ctx context.Context) (bool, error) {
	var in bool
	err := a.admin(ctx, func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&in)
	})
	return in, err
}

// WALPosition is how far the server's WAL goes, in bytes from 0/0: a
// primary's current write position (pg_current_wal_lsn), a standby's last
// position received and flushed from its primary (pg_last_wal_receive_lsn,
// or what it replayed when it never streamed). A standby is behind its
// primary by the difference.
func (a PGAdmin) WALPosition(ctx context.Context) (uint64, error) {
	var pos int64
	err := a.admin(ctx, func(c *sql.Conn) error {
		return c.QueryRowContext(ctx, `SELECT (CASE WHEN pg_is_in_recovery()
			THEN COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), '0/0')
			ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint`).Scan(&pos)
	})
	if err != nil {
		return 0, fmt.Errorf("dbserver: WAL position: %w", err)
	}
	return uint64(pos), nil
}

// Promote makes a standby a primary (pg_promote, waiting up to a minute
// for it to finish) and clears its synchronous standbys: it has none yet.
func (a PGAdmin) Promote(ctx context.Context) error {
	return a.admin(ctx, func(c *sql.Conn) error {
		if err := setSyncNames(ctx, c, ""); err != nil {
			return err
		}
		var ok bool
		if err := c.QueryRowContext(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
			return fmt.Errorf("dbserver: pg_promote: %w", err)
		}
		if !ok {
			return errors.New("dbserver: pg_promote: not promoted within 60 s")
		}
		return nil
	})
}

// SetSynchronousStandbys names the standbys (application names) a COMMIT
// on this primary waits for: one ("sync" in pg_stat_replication), or any
// one of several (ANY 1, "quorum"); none makes it
// asynchronous. It takes effect at once (pg_reload_conf) for new commits.
func (a PGAdmin) SetSynchronousStandbys(ctx context.Context, apps ...string) error {
	names := ""
	switch {
	case len(apps) == 1:
		names = quoteIdent(apps[0])
	case len(apps) > 1:
		q := make([]string, len(apps))
		for i, a := range apps {
			q[i] = quoteIdent(a)
		}
		names = "ANY 1 (" + strings.Join(q, ", ") + ")"
	}
	return a.admin(ctx, func(c *sql.Conn) error { return setSyncNames(ctx, c, names) })
}

func setSyncNames(ctx context.Context, c *sql.Conn, names string) error {
	if _, err := c.ExecContext(ctx, "ALTER SYSTEM SET synchronous_standby_names = "+quoteLiteral(names)); err != nil {
		return fmt.Errorf("dbserver: set synchronous_standby_names: %w", err)
	}
	if _, err := c.ExecContext(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("dbserver: reload: %w", err)
	}
	return nil
}

// Standby is one standby as its primary sees it (pg_stat_replication).
type Standby struct {
	App string
	// State is the WAL sender's state: "streaming" once caught up.
	State string
	// Sync is "sync" for a synchronous standby, "async", "potential" or
	// "quorum".
	Sync string
}

// Standbys lists the standbys streaming from this primary.
func (a PGAdmin) Standbys(ctx context.Context) ([]Standby, error) {
	var out []Standby
	err := a.admin(ctx, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, "SELECT application_name, state, sync_state FROM pg_stat_replication")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st Standby
			if err := rows.Scan(&st.App, &st.State, &st.Sync); err != nil {
				return err
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	return out, err
}

// WaitStandby waits until standby app streams from this primary, and, if
// sync, counts as synchronous (or quorum: one of ANY 1).
func (a PGAdmin) WaitStandby(ctx context.Context, app string, sync bool) error {
	var last string
	for {
		sts, err := a.Standbys(ctx)
		last = fmt.Sprint(sts, err)
		for _, st := range sts {
			if st.App == app && st.State == "streaming" && (!sync || st.Sync == "sync" || st.Sync == "quorum") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dbserver: standby %s not streaming (sync %v): %w; last seen %s", app, sync, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// quoteLiteral quotes an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// InRecovery is s.Admin().InRecovery.
func (s *Server) InRecovery(ctx context.Context) (bool, error) {
	a, err := s.Admin()
	if err != nil {
		return false, err
	}
	return a.InRecovery(ctx)
}

// WALPosition is s.Admin().WALPosition.
func (s *Server) WALPosition(ctx context.Context) (uint64, error) {
	a, err := s.Admin()
	if err != nil {
		return 0, err
	}
	return a.WALPosition(ctx)
}

// Promote is s.Admin().Promote.
func (s *Server) Promote(ctx context.Context) error {
	a, err := s.Admin()
	if err != nil {
		return err
	}
	return a.Promote(ctx)
}

// SetSynchronousStandbys is s.Admin().SetSynchronousStandbys.
func (s *Server) SetSynchronousStandbys(ctx context.Context, apps ...string) error {
	a, err := s.Admin()
	if err != nil {
		return err
	}
	return a.SetSynchronousStandbys(ctx, apps...)
}

// Standbys is s.Admin().Standbys.
func (s *Server) Standbys(ctx context.Context) ([]Standby, error) {
	a, err := s.Admin()
	if err != nil {
		return nil, err
	}
	return a.Standbys(ctx)
}

// WaitStandby is s.Admin().WaitStandby.
func (s *Server) WaitStandby(ctx context.Context, app string, sync bool) error {
	a, err := s.Admin()
	if err != nil {
		return err
	}
	return a.WaitStandby(ctx, app, sync)
}
