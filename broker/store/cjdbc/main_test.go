package cjdbc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// Two pools, so two PostgreSQL servers: a and b. Started on first use,
// closed by TestMain.
var (
	poolA = dbtest.NewPool("cjdbca")
	poolB = dbtest.NewPool("cjdbcb")
)

func TestMain(m *testing.M) {
	code := m.Run()
	poolA.Close()
	poolB.Close()
	os.Exit(code)
}

var ctx = context.Background()

// crash drops the store as a killed broker would: nothing waits for the
// groups under way.
func (s *Store) crash() {
	s.mu.Lock()
	s.closed = true
	s.failed = fmt.Errorf("%w: crashed", store.ErrFailed)
	s.cond.Broadcast()
	s.cancel()
	s.mu.Unlock()
	func() {
		defer func() { _ = recover() }()
		close(s.reqs)
	}()
	<-s.wdone
	s.bg.Wait()
	for _, m := range s.members {
		if db := m.db; db != nil {
			db.Close()
		}
	}
}

// fault wraps one database's Opener and the DBs it opens: it can make the
// database unreachable (Open and every Apply fail, as a killed server),
// and hold a copy to it (Replace) until released.
type fault struct {
	open Opener

	mu       sync.Mutex
	down     bool
	holdCopy chan struct{} // closed by the test to let a held copy go on
	copying  chan struct{} // closed when a copy is held
	applies  int
}

var errDown = errors.New("fault: database down")

func (f *fault) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fault) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// holdCopies makes the next copy stop, after its first message, until
// the returned release is called; held is closed when it stops.
func (f *fault) holdCopies() (held <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdCopy, f.copying = make(chan struct{}), make(chan struct{})
	h := f.holdCopy
	return f.copying, func() { close(h) }
}

func (f *fault) Open(ctx context.Context) (DB, error) {
	if f.isDown() {
		return nil, errDown
	}
	db, err := f.open(ctx)
	if err != nil {
		return nil, err
	}
	return &faultDB{DB: db, f: f}, nil
}

type faultDB struct {
	DB
	f *fault
}

func (d *faultDB) Apply(ctx context.Context, g []*Group, replay uint64) error {
	if d.f.isDown() {
		return errDown
	}
	d.f.mu.Lock()
	d.f.applies++
	d.f.mu.Unlock()
	return d.DB.Apply(ctx, g, replay)
}

func (d *faultDB) Replace(ctx context.Context, applied, high uint64, scan func(fn func(*store.Message) error) error) error {
	if d.f.isDown() {
		return errDown
	}
	d.f.mu.Lock()
	hold, copying := d.f.holdCopy, d.f.copying
	d.f.holdCopy = nil
	d.f.mu.Unlock()
	return d.DB.Replace(ctx, applied, high, func(fn func(*store.Message) error) error {
		n := 0
		return scan(func(m *store.Message) error {
			if n++; n == 2 && hold != nil {
				close(copying)
				select {
				case <-hold:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return fn(m)
		})
	})
}

// sqlOpener opens one database of kind ("sqlite", "postgres",
// "mariadb") on pool: a fresh database, the same at every call.
func sqlOpener(tb testing.TB, pool *dbtest.Pool, kind string) (Opener, sqlstore.Options) {
	opts := pool.Fresh(tb, kind)
	opts.CommitTimeout = 20 * time.Second
	return func(ctx context.Context) (DB, error) { return OpenSQL(ctx, opts) }, opts
}

// set is the databases of one test: their faults and the options to
// open a store over them.
type set struct {
	faults []*fault
	opts   Options
}

func newSet(tb testing.TB, policy Policy, min int, kinds ...string) *set {
	s := &set{opts: Options{Policy: policy, MinDatabases: min, Retry: 20 * time.Millisecond, Logf: tb.Logf}}
	for i, kind := range kinds {
		pool := poolA
		if i%2 == 1 {
			pool = poolB
		}
		open, _ := sqlOpener(tb, pool, kind)
		f := &fault{open: open}
		s.faults = append(s.faults, f)
		s.opts.Databases = append(s.opts.Databases, Database{Name: fmt.Sprintf("%s-%d", kind, i), Open: f.Open})
	}
	return s
}

func (s *set) open(tb testing.TB) *Store {
	tb.Helper()
	st, err := Open(ctx, s.opts)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// content reads database i directly: its messages by seq, with bodies.
func (s *set) content(tb testing.TB, i int) (map[uint64]string, State) {
	tb.Helper()
	db, err := s.faults[i].open(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	st, err := db.State(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[uint64]string{}
	if err := db.Scan(ctx, func(m *store.Message) error {
		out[m.Seq] = string(m.Body)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out, st
}

func msg(i int) *store.Message {
	return &store.Message{Queue: "/queue/q", Headers: []store.Header{{Key: "n", Value: fmt.Sprint(i)}}, Body: []byte(fmt.Sprintf("body %d", i))}
}

// waitFor polls cond for up to two minutes (generous: loaded machines).
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func state(s *Store, i int) int {
	return int(s.Stats()[fmt.Sprintf("db_%d_state", i)])
}

// gatedDB holds every Apply until gate is closed, telling entered first.
type gatedDB struct {
	DB
	gate    chan struct{}
	entered chan struct{}
}

func (d *gatedDB) Apply(ctx context.Context, g []*Group, replay uint64) error {
	select {
	case d.entered <- struct{}{}:
	default:
	}
	select {
	case <-d.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return d.DB.Apply(ctx, g, replay)
}
