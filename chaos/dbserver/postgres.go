package dbserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// postgresBinDir finds the newest installed Debian PostgreSQL bin directory.
func postgresBinDir(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", fmt.Errorf("%w: no /usr/lib/postgresql/*/bin/initdb", ErrNotInstalled)
	}
	sort.Slice(ok, func(i, j int) bool { return pgMajor(ok[i]) > pgMajor(ok[j]) })
	return ok[0], nil
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres initialises a PostgreSQL cluster in dir/pgdata (initdb,
// trust authentication for the "postgres" role, which only 127.0.0.1 and
// the socket in dir can reach), starts it on 127.0.0.1 and creates
// DefaultDatabase. initdb and postgres refuse to run as root, so when the
// caller is root both run as the "postgres" OS user, who then owns dir.
//
// On error the partial server is returned with the error so the caller can
// Close it.
func StartPostgres(ctx context.Context, dir string, opts ...Option) (*Server, error) {
	s, err := newPostgres(dir, opts)
	if err != nil {
		return s, err
	}
	s.initData = func(ctx context.Context) error {
		return run(ctx, s.cred, s.Dir, filepath.Join(s.binDir, "initdb"), "-D", s.dataDir,
			"--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-locale", "--no-instructions")
	}
	if err := s.initData(ctx); err != nil {
		return s, err
	}
	return s, s.startNew(ctx)
}

// newPostgres prepares a PostgreSQL server in dir (owner, port, command
// line, DSN, bin directory) without creating its data directory.
func newPostgres(dir string, opts []Option) (*Server, error) {
	cfg := newConfig(opts)
	bin, err := postgresBinDir(cfg.binDir)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dbserver: %w", err)
	}
	s := &Server{Kind: Postgres, Dir: dir, cfg: cfg, binDir: bin,
		dataDir: filepath.Join(dir, "pgdata"), logPath: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: no postgres OS user", ErrNotInstalled)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		if err := makeTraversable(dir); err != nil {
			return nil, err
		}
		if err := chownTree(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("dbserver: chown: %w", err)
		}
	}
	if s.Port = cfg.port; s.Port == 0 {
		if s.Port, err = freePort("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	s.argv = []string{filepath.Join(bin, "postgres"), "-D", s.dataDir,
		"-p", strconv.Itoa(s.Port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		// Durable and honest: a COMMIT returns after its WAL is fsynced.
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
		"-c", "logging_collector=off", "-c", "max_connections=200",
	}
	for _, kv := range cfg.settings {
		s.argv = append(s.argv, "-c", kv[0]+"="+kv[1])
	}
	s.dsn = func(db string) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
	}
	s.createDB = func(ctx context.Context, name string) error { return pgCreateDB(ctx, s.dsn("postgres"), name) }
	return s, nil
}

// pgCreateDB creates database name unless it exists (doubling as the
// readiness probe: it connects and runs statements).
func pgCreateDB(ctx context.Context, adminDSN, name string) error {
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: a concurrent create
		return nil
	}
	return err
}

// quoteIdent quotes an SQL identifier for PostgreSQL.
func quoteIdent(name string) string {
	out := []byte{'"'}
	for i := 0; i < len(name); i++ {
		if name[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, name[i])
	}
	return string(append(out, '"'))
}
