package sqlstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// One PostgreSQL and one MariaDB server for the whole package (dbtest),
// started on first use and closed by TestMain. Tests do not run in
// parallel; the kill test kills the shared server and restarts it before
// it returns.
var dbs = dbtest.NewPool("sqlstore")

func TestMain(m *testing.M) {
	code := m.Run()
	dbs.Close()
	os.Exit(code)
}

// server returns the package's server of kind, or skips the test.
func server(tb testing.TB, kind dbserver.Kind) *dbserver.Server { return dbs.Server(tb, kind) }

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
		return dbs.Fresh(tb, "sqlite")
	}
	return dbs.Fresh(tb, string(tg.kind))
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
