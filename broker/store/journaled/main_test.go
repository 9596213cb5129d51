package journaled

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// One PostgreSQL server for the package (dbtest), started on first use and
// closed by TestMain.
var dbs = dbtest.NewPool("journaled")

func TestMain(m *testing.M) {
	code := m.Run()
	dbs.Close()
	os.Exit(code)
}

// postgres returns the package's PostgreSQL server, or skips the test.
func postgres(tb testing.TB) *dbserver.Server { return dbs.Server(tb, dbserver.Postgres) }

// freshSQL returns sqlstore.Options for an empty database: a SQLite file,
// or a new database on the shared PostgreSQL server.
func freshSQL(tb testing.TB, kind string) sqlstore.Options { return dbs.Fresh(tb, kind) }

// freshOptions returns Options over a new journal directory and database;
// the checkpointer runs only when a test calls Checkpoint.
func freshOptions(tb testing.TB, kind string) Options {
	return Options{Dir: filepath.Join(tb.TempDir(), "journal"), SQL: freshSQL(tb, kind), Interval: -1,
		Journal: journal.Options{SegmentSize: 64 << 10}, Logf: tb.Logf}
}

func mustOpen(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// crash drops s as kill -9 would after its last Write returned: journals
// and database closed, nothing checkpointed, every generation left on disk.
func crash(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.close(false); err != nil {
		tb.Fatalf("crash: %v", err)
	}
}
