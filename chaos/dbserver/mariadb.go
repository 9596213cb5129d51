package dbserver

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
)

// MariaDB's account for clients: created by the init file on every start,
// reachable only from 127.0.0.1.
const (
	mariaUser     = "lossbench"
	mariaPassword = "lossbench"
)

func mariaBins(override string) (installDB, server string, err error) {
	look := func(name string, dirs ...string) string {
		if override != "" {
			dirs = []string{override}
		} else if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range dirs {
			if p := filepath.Join(d, name); fileExists(p) {
				return p
			}
		}
		return ""
	}
	installDB = look("mariadb-install-db", "/usr/bin", "/usr/local/bin")
	server = look("mariadbd", "/usr/sbin", "/usr/local/sbin", "/usr/bin")
	if installDB == "" || server == "" {
		return "", "", fmt.Errorf("%w: no mariadb-install-db or mariadbd", ErrNotInstalled)
	}
	return installDB, server, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartMariaDB initialises a MariaDB data directory in dir/mariadb
// (mariadb-install-db), starts mariadbd on 127.0.0.1 with its socket in dir
// and creates DefaultDatabase and a client account (see DSN). It runs as
// the calling user (as root with --user=root).
//
// On error the partial server is returned with the error so the caller can
// Close it.
func StartMariaDB(ctx context.Context, dir string, opts ...Option) (*Server, error) {
	s, err := newMariaDB(ctx, dir, nil, opts)
	if err != nil {
		return s, err
	}
	return s, s.startNew(ctx)
}

// newMariaDB initialises a MariaDB data directory in dir/mariadb and
// prepares the server's command line, DSN and client account; extra
// arguments go before the settings. The server runs as the calling user,
// or, when root and an OS user is configured (Galera's "mysql"), as that
// user (mariadbd drops to it).
func newMariaDB(ctx context.Context, dir string, extra []string, opts []Option) (*Server, error) {
	cfg := newConfig(opts)
	installDB, server, err := mariaBins(cfg.binDir)
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
	s := &Server{Kind: MariaDB, Dir: dir, cfg: cfg,
		dataDir: filepath.Join(dir, "mariadb"), logPath: filepath.Join(dir, "mariadb.log")}
	if s.Port = cfg.port; s.Port == 0 {
		if s.Port, err = freePort("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	osUser := "--user=" + currentUser()
	if cfg.osUser != "" && os.Geteuid() == 0 {
		osUser = "--user=" + cfg.osUser
	}
	initFile := filepath.Join(dir, "init.sql")
	init := fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s`;\n"+
		"CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s';\n"+
		"GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1';\n",
		DefaultDatabase, mariaUser, mariaPassword, mariaUser)
	if err := os.WriteFile(initFile, []byte(init), 0o600); err != nil {
		return s, fmt.Errorf("dbserver: %w", err)
	}
	s.initData = func(ctx context.Context) error {
		if err := run(ctx, nil, dir, installDB, "--no-defaults", "--datadir="+s.dataDir, osUser,
			"--auth-root-authentication-method=normal", "--skip-test-db"); err != nil {
			return err
		}
		return s.ownByOSUser()
	}
	if err := s.initData(ctx); err != nil {
		return s, err
	}
	s.argv = []string{server, "--no-defaults", "--datadir=" + s.dataDir, osUser,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(dir, "mariadbd.sock"),
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--tmpdir=" + dir, "--init-file=" + initFile, "--skip-name-resolve",
		// Durable and honest: a COMMIT returns after the redo log (and the
		// binlog, when enabled with WithSetting("log-bin", ...)) is fsynced.
		"--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1",
		"--max-connections=200", "--max-allowed-packet=64M",
	}
	s.argv = append(s.argv, extra...)
	for _, kv := range cfg.settings {
		s.argv = append(s.argv, "--"+kv[0]+"="+kv[1])
	}
	s.dsn = func(db string) string {
		return fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s", mariaUser, mariaPassword, s.Port, db)
	}
	s.createDB = func(ctx context.Context, name string) error { return mariaCreateDB(ctx, s.dsn(""), name) }
	return s, nil
}

func mariaCreateDB(ctx context.Context, dsn, name string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"`")
	return err
}

func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Geteuid())
}
