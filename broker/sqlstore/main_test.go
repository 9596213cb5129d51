package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver"
)

// One PostgreSQL and one MariaDB server for the whole package, started on
// first use (a run of SQLite tests alone starts neither) and closed by
// TestMain. Tests do not run in parallel; the kill test kills the shared
// server and restarts it before it returns.
var servers = map[dbserver.Kind]*shared{
	dbserver.Postgres: {kind: dbserver.Postgres},
	dbserver.MariaDB:  {kind: dbserver.MariaDB},
}

type shared struct {
	kind dbserver.Kind
	once sync.Once
	srv  *dbserver.Server
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, sh := range servers {
		if sh.srv != nil {
			if err := sh.srv.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "close", sh.kind, err)
			}
		}
		if sh.dir != "" {
			os.RemoveAll(sh.dir)
		}
	}
	os.Exit(code)
}

// server returns the package's server of kind, starting it on first use,
// or skips the test when its binaries are not installed.
func server(tb testing.TB, kind dbserver.Kind) *dbserver.Server {
	tb.Helper()
	if err := dbserver.Available(kind); err != nil {
		tb.Skipf("%s not installed, run `make deps` (chaos/dbserver/install.sh): %v", kind, err)
	}
	sh := servers[kind]
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if sh.dir, sh.err = os.MkdirTemp("", "sqlstore-"+string(kind)+"-"); sh.err != nil {
			return
		}
		start := dbserver.StartPostgres
		if kind == dbserver.MariaDB {
			start = dbserver.StartMariaDB
		}
		sh.srv, sh.err = start(ctx, sh.dir)
	})
	if sh.err != nil {
		tb.Fatalf("start %s: %v", kind, sh.err)
	}
	return sh.srv
}

var dbCounter atomic.Int64

// target is where a test's store lives: a fresh database on a shared
// server, or a fresh SQLite file.
type target struct {
	name string // "sqlite", "postgres", "mariadb"
	kind dbserver.Kind
}

var targets = []target{{name: "sqlite"}, {name: "postgres", kind: dbserver.Postgres}, {name: "mariadb", kind: dbserver.MariaDB}}

// freshOptions returns Options for a new, empty store of t's kind.
func freshOptions(tb testing.TB, tg target) sqlstore.Options {
	tb.Helper()
	if tg.kind == "" {
		return sqlstore.Options{Driver: "sqlite", Path: filepath.Join(tb.TempDir(), "store.db")}
	}
	srv := server(tb, tg.kind)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbCounter.Add(1))
	if err := srv.CreateDatabase(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	driver := "postgres"
	if tg.kind == dbserver.MariaDB {
		driver = "mysql"
	}
	return sqlstore.Options{Driver: driver, DSN: srv.DSN(name)}
}

// forEach runs fn as a subtest on every target.
func forEach(t *testing.T, fn func(t *testing.T, tg target)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { fn(t, tg) })
	}
}

func mustOpen(tb testing.TB, opts sqlstore.Options) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.Open(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
