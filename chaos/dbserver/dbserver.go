// Package dbserver starts real PostgreSQL and MariaDB servers as child
// processes, for the stores' tests, the harness and the benchmark. A server
// lives in a directory of its own (data files, unix socket, log), listens on
// 127.0.0.1 on a free port, and is durable the honest way: PostgreSQL with
// fsync=on and synchronous_commit=on, MariaDB with
// innodb_flush_log_at_trx_commit=1 and sync_binlog=1.
//
// Faults act on the server's whole process tree, as a machine would: Kill is SIGKILL
// (the database crashes; what it fsynced survives, the OS page cache does
// too, so this is a process crash, not a power cut), Pause and Resume are
// SIGSTOP and SIGCONT (a hung database: connections stay open, nothing is
// answered). Restart starts the same data directory again on the same port.
//
// The binaries come from the Debian packages (postgresql, mariadb-server);
// install.sh beside this file installs them. Tests call Available first and
// skip with its message when they are missing.
package dbserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// ErrNotInstalled is returned when a server's binaries are not found.
var ErrNotInstalled = errors.New("dbserver: binaries not installed (run `make deps`, i.e. chaos/dbserver/install.sh, as root)")

// Kind names a database server.
type Kind string

// The kinds of server this package starts.
const (
	Postgres Kind = "postgres"
	MariaDB  Kind = "mariadb"
)

// DefaultDatabase is the database Start creates; DSN("") names it.
const DefaultDatabase = "lossbench"

// Option configures a server before it starts.
type Option func(*config)

type config struct {
	port         int
	settings     [][2]string
	startTimeout time.Duration
	keepData     bool
	binDir       string
	osUser       string // MariaDB's OS user when run as root (Galera)
	logf         func(string, ...any)
}

// WithPort listens on port instead of a free one.
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithSetting passes a server setting: `-c key=value` to postgres,
// `--key=value` to mariadbd. Later settings override the defaults.
func WithSetting(key, value string) Option {
	return func(c *config) { c.settings = append(c.settings, [2]string{key, value}) }
}

// WithStartTimeout bounds how long Start and Restart wait for the server to
// accept connections (default 60s).
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithKeepData keeps the data directory on Close (for a post-mortem).
func WithKeepData() Option { return func(c *config) { c.keepData = true } }

// WithBinDir uses the server binaries in dir instead of the installed ones.
func WithBinDir(dir string) Option { return func(c *config) { c.binDir = dir } }

// WithLogf reports lifecycle events (start, kill, restart).
func WithLogf(logf func(string, ...any)) Option { return func(c *config) { c.logf = logf } }

// Server is a running (or stopped, killed, paused) database server.
type Server struct {
	Kind Kind
	// Dir holds the server's data directory, socket and log.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int

	cfg     config
	binDir  string // PostgreSQL's bin directory (pg_basebackup)
	dataDir string
	logPath string
	argv    []string
	cred    *syscall.Credential
	// createDB creates a database if it does not exist.
	createDB func(ctx context.Context, name string) error
	// initData creates a new, empty data directory (initdb,
	// mariadb-install-db); nil for a standby, made from a base backup.
	initData func(ctx context.Context) error
	dsn      func(db string) string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error
	paused  bool
	wiped   bool // the data directory was destroyed (Wipe)
}

// DSN returns the data source name of database db ("" for DefaultDatabase)
// for the Go driver of this kind: pgx (database/sql name "pgx") for
// PostgreSQL, go-sql-driver/mysql ("mysql") for MariaDB.
func (s *Server) DSN(db string) string {
	if db == "" {
		db = DefaultDatabase
	}
	return s.dsn(db)
}

// Driver returns the database/sql driver name DSN is meant for.
func (s *Server) Driver() string {
	if s.Kind == Postgres {
		return "pgx"
	}
	return "mysql"
}

// Addr returns host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// LogPath returns the server's log file.
func (s *Server) LogPath() string { return s.logPath }

// CreateDatabase creates database name (if missing) on the running server.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	return s.createDB(ctx, name)
}

// Running reports whether the server process is alive (paused counts).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// start launches the server process and waits until it is ready.
func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.runningLocked() {
		s.mu.Unlock()
		return fmt.Errorf("dbserver: %s already running", s.Kind)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("dbserver: open log: %w", err)
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so that the group can be killed; Kill, Pause and
	// Resume walk the process tree (see proctree.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.mu.Unlock()
		return fmt.Errorf("dbserver: start %s: %w", s.Kind, err)
	}
	done := make(chan struct{})
	s.cmd, s.done, s.waitErr, s.paused = cmd, done, nil, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Unlock()
	s.logfn("dbserver: %s started, pid %d, %s, dir %s", s.Kind, cmd.Process.Pid, s.Addr(), s.Dir)

	ctx, cancel := context.WithTimeout(ctx, s.cfg.startTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-done:
			return fmt.Errorf("dbserver: %s exited during start (%v); log %s:\n%s", s.Kind, s.exitErr(), s.logPath, osutil.Tail(s.logPath, 30))
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		// Ready means answering and set up: creating the default
		// database (a no-op once it exists) checks both.
		last = s.createDB(pctx, DefaultDatabase)
		pcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dbserver: %s not ready: %v (last: %v); log %s:\n%s", s.Kind, ctx.Err(), last, s.logPath, osutil.Tail(s.logPath, 30))
		case <-done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

// signal sends sig to the server's process tree: SIGSTOP freezes it,
// SIGCONT thaws it, SIGKILL crashes every process of it at once.
func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return fmt.Errorf("dbserver: %s not running", s.Kind)
	}
	pid := s.cmd.Process.Pid
	switch sig {
	case syscall.SIGSTOP:
		freezeTree(pid)
		s.paused = true
	case syscall.SIGCONT:
		for _, p := range treeOf(pid) {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
		s.paused = false
	case syscall.SIGKILL:
		killTree(pid, 30*time.Second)
	default:
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("dbserver: signal %v: %w", sig, err)
		}
	}
	return nil
}

func (s *Server) wait(d time.Duration) bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Kill crashes the server: SIGKILL to its whole process tree at once, then
// waits for it to be gone.
func (s *Server) Kill() error {
	if err := s.signal(syscall.SIGKILL); err != nil {
		return err
	}
	s.wait(time.Minute)
	s.logfn("dbserver: %s killed", s.Kind)
	return nil
}

// Stop shuts the server down cleanly (a paused server is resumed first),
// killing it if it has not stopped within 30 s.
func (s *Server) Stop() error {
	s.mu.Lock()
	running, paused := s.runningLocked(), s.paused
	s.mu.Unlock()
	if !running {
		return nil
	}
	if paused {
		_ = s.signal(syscall.SIGCONT)
	}
	// PostgreSQL: SIGINT is "fast shutdown"; mariadbd: SIGTERM.
	sig := syscall.SIGTERM
	if s.Kind == Postgres {
		sig = syscall.SIGINT
	}
	s.mu.Lock()
	err := s.cmd.Process.Signal(sig)
	s.mu.Unlock()
	if err == nil && s.wait(30*time.Second) {
		s.logfn("dbserver: %s stopped", s.Kind)
		return nil
	}
	if err := s.signal(syscall.SIGKILL); err != nil && s.Running() {
		return err
	}
	s.wait(time.Minute)
	return fmt.Errorf("dbserver: %s did not stop within 30s; killed", s.Kind)
}

// Pause freezes the server (SIGSTOP to its process tree).
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume unfreezes a paused server (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

// Restart stops the server if it runs (cleanly; use Kill first for a
// crash) and starts it again on the same data directory and port; it
// returns once the server accepts connections (after crash recovery).
// After Wipe it starts on a new, empty data directory.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	s.mu.Lock()
	wiped := s.wiped
	s.mu.Unlock()
	if wiped {
		if s.initData == nil {
			return fmt.Errorf("dbserver: %s in %s: its data was destroyed and it has no data of its own to create (a standby: rebuild it from its primary)", s.Kind, s.Dir)
		}
		if err := s.initData(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		s.wiped = false
		s.mu.Unlock()
		s.logfn("dbserver: %s: new empty data directory %s", s.Kind, s.dataDir)
	}
	return s.start(ctx)
}

// Wipe destroys the server's data, as the loss of its disk would: it
// crashes the server (Kill) and removes its data directory, and every
// database and row in it. Restart then starts it on a new, empty data
// directory (with DefaultDatabase only).
func (s *Server) Wipe() error {
	if s.Running() {
		if err := s.Kill(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.wiped = true
	s.mu.Unlock()
	if err := os.RemoveAll(s.dataDir); err != nil {
		return fmt.Errorf("dbserver: wipe %s: %w", s.dataDir, err)
	}
	s.logfn("dbserver: %s: data directory %s destroyed", s.Kind, s.dataDir)
	return nil
}

// Close stops the server and, unless WithKeepData, removes its data
// directory and log. The directory passed to Start itself is left.
func (s *Server) Close() error {
	err := s.Stop()
	if !s.cfg.keepData && s.dataDir != "" {
		if rerr := os.RemoveAll(s.dataDir); rerr != nil && err == nil {
			err = fmt.Errorf("dbserver: remove data: %w", rerr)
		}
		os.Remove(s.logPath)
	}
	return err
}

func (s *Server) logfn(format string, args ...any) {
	if s.cfg.logf != nil {
		s.cfg.logf(format, args...)
	}
}

func newConfig(opts []Option) config {
	c := config{startTimeout: 60 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// run runs a setup command (initdb, mariadb-install-db), returning its
// output in the error when it fails.
func run(ctx context.Context, cred *syscall.Credential, dir string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dbserver: %s: %w\n%s", filepath.Base(argv[0]), err, out.Bytes())
	}
	return nil
}

// makeTraversable lets user uid reach dir: when the process is root and an
// ancestor of dir is closed to others (testing's TempDir parents are 0700),
// it adds search permission (o+x, not listing) to ancestors under the
// system temp directory, and reports an error for others.
func makeTraversable(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	tmp, _ := filepath.Abs(os.TempDir())
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("dbserver: stat %s: %w", d, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			rel, rerr := filepath.Rel(tmp, d)
			if rerr != nil || rel == ".." || (len(rel) > 2 && rel[:3] == "../") {
				return fmt.Errorf("dbserver: %s is not searchable by the database user; use a directory under %s", d, tmp)
			}
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("dbserver: chmod %s: %w", d, err)
			}
		}
		if d == "/" || d == filepath.Dir(d) {
			return nil
		}
	}
}

// chownTree gives every file under dir to uid:gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
