// Package dbtest gives a test package real database servers: one
// PostgreSQL and one MariaDB server for the whole package, started on first
// use (a run of SQLite tests alone starts neither), and a fresh, empty
// database per test. Tests skip with a clear message when a server's
// binaries are not installed (`make deps` installs them).
//
//	var dbs = dbtest.NewPool("sqlstore")
//
//	func TestMain(m *testing.M) { code := m.Run(); dbs.Close(); os.Exit(code) }
//
//	func TestX(t *testing.T) { opts := dbs.Fresh(t, "postgres") ... }
package dbtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver"
	"golang.org/x/sys/unix"
)

// Kinds are the database kinds Fresh accepts, SQLite first.
var Kinds = []string{"sqlite", "postgres", "mariadb"}

// Pool holds a test package's shared servers.
type Pool struct {
	prefix  string
	n       atomic.Int64
	mu      sync.Mutex
	servers map[dbserver.Kind]*entry
}

type entry struct {
	once sync.Once
	srv  *dbserver.Server
	dir  string
	err  error
}

// NewPool returns a pool whose temporary directories and database names
// start with prefix.
func NewPool(prefix string) *Pool {
	return &Pool{prefix: prefix, servers: map[dbserver.Kind]*entry{}}
}

// Server returns the package's server of kind, starting it on first use,
// or skips tb when its binaries are not installed. A test that kills or
// stops the shared server must restart it before it returns.
func (p *Pool) Server(tb testing.TB, kind dbserver.Kind) *dbserver.Server {
	tb.Helper()
	if err := dbserver.Available(kind); err != nil {
		tb.Skipf("%s not installed, run `make deps` (chaos/dbserver/install.sh): %v", kind, err)
	}
	p.mu.Lock()
	e := p.servers[kind]
	if e == nil {
		e = &entry{}
		p.servers[kind] = e
	}
	p.mu.Unlock()
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if e.dir, e.err = os.MkdirTemp(dataRoot(), p.prefix+"-"+string(kind)+"-"); e.err != nil {
			return
		}
		start := dbserver.StartPostgres
		if kind == dbserver.MariaDB {
			start = dbserver.StartMariaDB
		}
		e.srv, e.err = start(ctx, e.dir)
	})
	if e.err != nil {
		tb.Fatalf("start %s: %v", kind, e.err)
	}
	return e.srv
}

// dataRoot is where the pool's servers keep their data. Tests need a real
// server's behaviour under kill -9 (what it committed survives the
// process), not the disk's fsync rate, so their data lives on tmpfs
// (/dev/shm) where there is one: a killed PostgreSQL then replays its WAL
// in moments, where under make test's parallel fsync load its crash
// recovery outlasted a 60 s start timeout. Benchmarks (-test.bench) measure
// the database on the disk, in the system's temporary directory.
// LOSSBENCH_DBTEST_DIR overrides both.
func dataRoot() string {
	if d := os.Getenv("LOSSBENCH_DBTEST_DIR"); d != "" {
		return d
	}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		return ""
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && unix.Access("/dev/shm", unix.W_OK) == nil {
		return "/dev/shm"
	}
	return ""
}

// Fresh returns sqlstore.Options naming a new, empty database of kind
// ("sqlite", "postgres" or "mariadb"): a SQLite file in tb's temporary
// directory, or a new database on the shared server.
func (p *Pool) Fresh(tb testing.TB, kind string) sqlstore.Options {
	tb.Helper()
	var k dbserver.Kind
	driver := "postgres"
	switch kind {
	case "sqlite":
		return sqlstore.Options{Driver: "sqlite", Path: filepath.Join(tb.TempDir(), "store.db")}
	case "postgres":
		k = dbserver.Postgres
	case "mariadb":
		k, driver = dbserver.MariaDB, "mysql"
	default:
		tb.Fatalf("dbtest: unknown database kind %q; want one of %v", kind, Kinds)
	}
	srv := p.Server(tb, k)
	name := fmt.Sprintf("%s%d_%d", p.prefix, os.Getpid(), p.n.Add(1))
	if err := srv.CreateDatabase(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	return sqlstore.Options{Driver: driver, DSN: srv.DSN(name)}
}

// Close stops every server the pool started and removes their data.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for kind, e := range p.servers {
		if e.srv != nil {
			if err := e.srv.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "dbtest: close", kind, err)
			}
		}
		if e.dir != "" {
			os.RemoveAll(e.dir)
		}
	}
}
