package journaled

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver"
)

// One PostgreSQL server for the package, started on first use and closed
// by TestMain (as in broker/sqlstore's tests).
var pg struct {
	once sync.Once
	srv  *dbserver.Server
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.srv != nil {
		if err := pg.srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close postgres:", err)
		}
	}
	if pg.dir != "" {
		os.RemoveAll(pg.dir)
	}
	os.Exit(code)
}

func postgres(tb testing.TB) *dbserver.Server {
	tb.Helper()
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		tb.Skipf("postgres not installed, run `make deps`: %v", err)
	}
	pg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if pg.dir, pg.err = os.MkdirTemp("", "journaled-pg-"); pg.err != nil {
			return
		}
		pg.srv, pg.err = dbserver.StartPostgres(ctx, pg.dir)
	})
	if pg.err != nil {
		tb.Fatalf("start postgres: %v", pg.err)
	}
	return pg.srv
}

var dbCounter atomic.Int64

// freshSQL returns sqlstore.Options for an empty database: a SQLite file,
// or a new database on the shared PostgreSQL server.
func freshSQL(tb testing.TB, kind string) sqlstore.Options {
	tb.Helper()
	if kind == "sqlite" {
		return sqlstore.Options{Driver: "sqlite", Path: filepath.Join(tb.TempDir(), "store.db")}
	}
	srv := postgres(tb)
	name := fmt.Sprintf("j%d_%d", os.Getpid(), dbCounter.Add(1))
	if err := srv.CreateDatabase(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	return sqlstore.Options{Driver: "postgres", DSN: srv.DSN(name)}
}

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
