package lease_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// One PostgreSQL and one MariaDB server for the package (dbtest), started
// on first use and closed by TestMain.
var dbs = dbtest.NewPool("lease")

func TestMain(m *testing.M) {
	code := m.Run()
	dbs.Close()
	os.Exit(code)
}

// freshDB returns sqlstore.Options naming a new, empty database shared by
// a test's contenders.
func freshDB(tb testing.TB, kind string) sqlstore.Options { return dbs.Fresh(tb, kind) }

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
