package lease_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver"
)

// One PostgreSQL and one MariaDB server for the package, started on first
// use and closed by TestMain.
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

func server(tb testing.TB, kind dbserver.Kind) *dbserver.Server {
	tb.Helper()
	if err := dbserver.Available(kind); err != nil {
		tb.Skipf("%s not installed, run `make deps`: %v", kind, err)
	}
	sh := servers[kind]
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if sh.dir, sh.err = os.MkdirTemp("", "lease-"+string(kind)+"-"); sh.err != nil {
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

// freshDB returns sqlstore.Options naming a new, empty database shared by
// a test's contenders.
func freshDB(tb testing.TB, kind string) sqlstore.Options {
	tb.Helper()
	switch kind {
	case "sqlite":
		return sqlstore.Options{Driver: "sqlite", Path: filepath.Join(tb.TempDir(), "lease.db")}
	case "postgres", "mariadb":
		k, driver := dbserver.Postgres, "postgres"
		if kind == "mariadb" {
			k, driver = dbserver.MariaDB, "mysql"
		}
		srv := server(tb, k)
		name := fmt.Sprintf("l%d_%d", os.Getpid(), dbCounter.Add(1))
		if err := srv.CreateDatabase(context.Background(), name); err != nil {
			tb.Fatal(err)
		}
		return sqlstore.Options{Driver: driver, DSN: srv.DSN(name)}
	}
	tb.Fatalf("unknown kind %q", kind)
	return sqlstore.Options{}
}

var kinds = []string{"sqlite", "postgres", "mariadb"}

func forEach(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// Short lease timings for tests.
var testOpts = lease.Options{Renew: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Margin: 200 * time.Millisecond, Poll: 10 * time.Millisecond}

// contender is one broker: its own database handle and lease.
type contender struct {
	db    *sql.DB
	l     *lease.Lease
	clock *pausableClock
}

func newContender(tb testing.TB, o sqlstore.Options, owner string) *contender {
	tb.Helper()
	db, dialect, err := sqlstore.OpenDB(o)
	if err != nil {
		tb.Fatal(err)
	}
	c := &contender{db: db, clock: &pausableClock{}}
	opts := testOpts
	opts.Clock = c.clock
	opts.Logf = tb.Logf
	c.l = lease.New(db, dialect, owner, opts)
	tb.Cleanup(func() {
		c.l.Release()
		db.Close()
	})
	return c
}

// pausableClock is the real clock until Pause, stands still until Resume,
// then jumps to the real time: what a SIGSTOPped process sees.
type pausableClock struct {
	mu     sync.Mutex
	paused bool
	at     time.Time
}

func (c *pausableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return c.at
	}
	return time.Now()
}

func (c *pausableClock) Pause() {
	c.mu.Lock()
	c.paused, c.at = true, time.Now()
	c.mu.Unlock()
}

func (c *pausableClock) Resume() {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
}

// acquired is the outcome of an Acquire run in the background.
type acquired struct {
	epoch int64
	err   error
	at    time.Time // when Acquire returned
}

func acquireAsync(ctx context.Context, l *lease.Lease) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		e, err := l.Acquire(ctx)
		ch <- acquired{e, err, time.Now()}
	}()
	return ch
}
