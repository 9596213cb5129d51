package journaled

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Defaults for Options.
const (
	DefaultInterval    = time.Second
	DefaultMaxBytes    = 32 << 20
	DefaultSegmentSize = 1 << 20
)

// Options configure Open. Dir and SQL are required; the rest has defaults.
// Open takes configurations rather than opened stores because it owns
// both: every generation is a journal of its own, and the SQL store's
// tables are written by the checkpoint's transactions.
type Options struct {
	// Dir is the journal directory; it holds one subdirectory per
	// generation.
	Dir string
	// Journal configures each generation's journal (sync policy, FS, ...).
	// SegmentSize 0 means DefaultSegmentSize, smaller than a plain
	// journal's: a generation lives for one checkpoint interval.
	Journal journal.Options
	// SQL configures the database. Its Fence, if set, is also called in
	// every checkpoint transaction; a fence error fails the store.
	SQL sqlstore.Options
	// Interval is how often the checkpointer runs: 0 means
	// DefaultInterval, negative only by size and Checkpoint.
	Interval time.Duration
	// MaxBytes of journal writes since the last checkpoint start one
	// early (0: DefaultMaxBytes).
	MaxBytes int64
	// Logf receives recovery and checkpoint failures; nil is silent.
	Logf func(format string, args ...any)
}

// Store is the journaled-jdbc store. It implements store.Store,
// store.Loader, store.Statser and store.Namer.
type Store struct {
	opts    Options
	fs      vfs.FS
	lock    io.Closer
	sql     *sqlstore.Store
	db      *sql.DB
	dialect string

	// rot is held shared by Write while it writes to cur, exclusively by
	// a rotation and by Close. cur changes under rot and mu both.
	rot    sync.RWMutex
	cur    *gen
	closed bool

	mu          sync.Mutex // guards the fields below
	live        map[uint64]loc
	next        uint64
	gens        map[uint64]*gen // current and frozen generations by number
	frozen      []*gen          // rotated, not yet applied, oldest first
	journalOnly int             // live messages only in the journal
	applied     uint64          // the generation recorded in the database

	cpMu  sync.Mutex // one checkpoint at a time; guards spare
	spare *gen

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	failed atomic.Pointer[error]

	stats struct {
		writes, bytes, checkpoints, cpErrors atomic.Uint64
		inserted, deleted, cpNanos, cpLast   atomic.Uint64
	}
}

// gen is one generation: a journal in its own directory.
type gen struct {
	n       uint64
	dir     string
	j       *journal.Store
	records atomic.Int64
	bytes   atomic.Int64
	first   time.Time // first write; guarded by Store.mu
}

// loc is where a live message's body is: gen 0 is the database.
type loc struct {
	gen  uint64
	jseq uint64
}

var _ interface {
	store.Store
	store.Loader
	store.Statser
	store.Namer
} = (*Store)(nil)

// Open opens the SQL store (creating its schema), applies every journal
// generation not yet in the database, and starts the checkpointer.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("journaled: no journal directory")
	}
	if opts.Journal.FS == nil {
		opts.Journal.FS = vfs.Default
	}
	if opts.Journal.SegmentSize == 0 {
		opts.Journal.SegmentSize = DefaultSegmentSize
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	s := &Store{
		opts: opts, fs: opts.Journal.FS,
		live: make(map[uint64]loc), gens: make(map[uint64]*gen),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := s.fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("journaled: create %s: %w", opts.Dir, err)
	}
	lock, err := lockDir(s.fs, opts.Dir, opts.Journal.LockTimeout)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if s.sql, err = sqlstore.OpenShared(ctx, opts.SQL); err != nil { // checkpoints go through WriteTx
		lock.Close()
		return nil, fmt.Errorf("journaled: %w", err)
	}
	s.db, s.dialect = s.sql.DB(), s.sql.Dialect()
	if err := s.recover(ctx); err != nil {
		s.abandon()
		return nil, err
	}
	if s.cur, err = s.openGen(s.applied + 1); err != nil {
		s.abandon()
		return nil, err
	}
	s.gens[s.cur.n] = s.cur
	go s.checkpointer()
	return s, nil
}

// abandon releases what a failed Open had opened.
func (s *Store) abandon() {
	for _, g := range s.gens {
		g.j.Close()
	}
	s.sql.Close()
	s.lock.Close()
}

func lockDir(fs vfs.FS, dir string, timeout time.Duration) (io.Closer, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := fs.Lock(filepath.Join(dir, "LOCK"))
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, vfs.ErrLocked) || (timeout >= 0 && !time.Now().Before(deadline)) {
			return nil, fmt.Errorf("journaled: lock %s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Name implements store.Namer: "journaled-jdbc/postgres", ...
func (s *Store) Name() string { return "journaled-jdbc/" + s.dialect }

// Write implements store.Store: it returns once b is in the current
// generation's journal as durable as the journal's sync policy makes it.
// It sets the Seq and Size of b's adds.
func (s *Store) Write(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.rot.RLock()
	defer s.rot.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		return *f
	}
	if len(b.Adds) == 0 && len(b.Acks) == 0 {
		return nil
	}
	g := s.cur
	if err := s.assign(g, b); err != nil {
		return err
	}
	jb := &store.Batch{Adds: make([]*store.Message, 1+len(b.Adds))}
	jb.Adds[0] = &store.Message{Queue: metaQueue, Body: encodeMeta(b)}
	size := int64(len(jb.Adds[0].Body))
	for i, m := range b.Adds {
		jb.Adds[i+1] = &store.Message{Queue: m.Queue, Headers: m.Headers, Body: m.Body}
		size += int64(len(m.Body) + len(m.Queue))
	}
	// The batch is already applied to the index: from here it must reach
	// the journal or fail the store, whatever ctx says.
	if err := g.j.Write(context.Background(), jb); err != nil {
		return s.fail(err)
	}
	s.mu.Lock()
	for i, m := range b.Adds {
		s.live[m.Seq] = loc{gen: g.n, jseq: jb.Adds[i+1].Seq}
	}
	s.journalOnly += len(b.Adds)
	s.mu.Unlock()
	g.records.Add(1)
	s.stats.writes.Add(1)
	s.stats.bytes.Add(uint64(size))
	if g.bytes.Add(size) >= s.opts.MaxBytes {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// assign validates b's acks against the live messages, removes them, and
// hands out seqs to b's adds. A refused batch changes nothing.
func (s *Store) assign(g *gen, b *store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := store.CheckAcks("journaled", b.Acks, s.live); err != nil {
		return err
	}
	for _, seq := range b.Acks {
		if s.live[seq].gen != 0 {
			s.journalOnly--
		}
		delete(s.live, seq)
	}
	for _, m := range b.Adds {
		m.Seq = s.next
		s.next++
		m.Size = len(m.Body)
	}
	if g.first.IsZero() {
		g.first = time.Now()
	}
	return nil
}

// fail records the store's first failure; it and every later Write fail
// with it.
func (s *Store) fail(err error) error {
	if !errors.Is(err, store.ErrFailed) {
		err = fmt.Errorf("%w: journaled: %w", store.ErrFailed, err)
	}
	if s.failed.CompareAndSwap(nil, &err) {
		s.logf("%v", err)
	}
	return *s.failed.Load()
}

// Recover implements store.Store. Open has applied every generation, so
// the database holds every unacknowledged message.
func (s *Store) Recover(ctx context.Context, fn func(*store.Message) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	return s.sql.Recover(ctx, fn)
}

// Load implements store.Loader: from the journal for a message not yet
// checkpointed, else from the database.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	for {
		if s.isClosed() {
			return nil, store.ErrClosed
		}
		s.mu.Lock()
		l, ok := s.live[seq]
		g := s.gens[l.gen]
		s.mu.Unlock()
		switch {
		case !ok:
			return nil, fmt.Errorf("journaled: load of unknown message %d", seq)
		case l.gen == 0:
			return s.sql.Load(ctx, seq)
		case g == nil:
			continue // applied since: now in the database
		}
		body, err := g.j.Load(ctx, l.jseq)
		if errors.Is(err, store.ErrClosed) {
			continue // the generation was applied and closed meanwhile
		}
		return body, err
	}
}

func (s *Store) isClosed() bool {
	s.rot.RLock()
	defer s.rot.RUnlock()
	return s.closed
}

// Stats implements store.Statser. checkpoint_lag_messages and
// checkpoint_lag_seconds are what losing the journal would lose now.
func (s *Store) Stats() map[string]float64 {
	s.mu.Lock()
	lagMsgs, live, applied, pending := s.journalOnly, len(s.live), s.applied, len(s.frozen)
	var oldest time.Time
	for _, g := range s.frozen {
		if !g.first.IsZero() {
			oldest = g.first
			break
		}
	}
	if oldest.IsZero() && s.cur != nil {
		oldest = s.cur.first
	}
	s.mu.Unlock()
	lagSecs := 0.0
	if !oldest.IsZero() {
		lagSecs = time.Since(oldest).Seconds()
	}
	failed := 0.0
	if s.failed.Load() != nil {
		failed = 1
	}
	st := &s.stats
	return map[string]float64{
		"checkpoint_lag_messages":        float64(lagMsgs),
		"checkpoint_lag_seconds":         lagSecs,
		"checkpoints_total":              float64(st.checkpoints.Load()),
		"checkpoint_errors_total":        float64(st.cpErrors.Load()),
		"checkpoint_seconds_total":       float64(st.cpNanos.Load()) / 1e9,
		"checkpoint_seconds_last":        float64(st.cpLast.Load()) / 1e9,
		"checkpoint_rows_inserted_total": float64(st.inserted.Load()),
		"checkpoint_rows_deleted_total":  float64(st.deleted.Load()),
		"checkpoint_generation":          float64(applied),
		"checkpoint_pending_generations": float64(pending),
		"journal_writes_total":           float64(st.writes.Load()),
		"journal_bytes_written_total":    float64(st.bytes.Load()),
		"live_messages":                  float64(live),
		"failed":                         failed,
	}
}

// Close stops the checkpointer, applies everything the journal holds to
// the database (a clean stop leaves the journal empty) and releases the
// journal and the database. If that last checkpoint fails, the journal
// keeps the data and the next Open applies it.
func (s *Store) Close() error { return s.close(true) }

func (s *Store) close(checkpoint bool) error {
	s.rot.Lock()
	if s.closed {
		s.rot.Unlock()
		return nil
	}
	s.closed = true
	s.rot.Unlock()
	close(s.stop)
	<-s.done

	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	var err error
	if checkpoint && s.failed.Load() == nil {
		s.mu.Lock()
		if s.cur.records.Load() > 0 {
			s.frozen = append(s.frozen, s.cur)
		}
		s.mu.Unlock()
		err = s.applyFrozen(context.Background())
	}
	s.mu.Lock()
	gens := make([]*gen, 0, len(s.gens)+1)
	for _, g := range s.gens {
		gens = append(gens, g)
	}
	s.mu.Unlock()
	if s.spare != nil {
		gens = append(gens, s.spare)
	}
	for _, g := range gens {
		if cerr := g.j.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if checkpoint && g.records.Load() == 0 {
			if rerr := s.removeGen(g.dir); rerr != nil && err == nil {
				err = rerr
			}
		}
	}
	if cerr := s.sql.Close(); cerr != nil && err == nil {
		err = cerr
	}
	s.lock.Close()
	if err == nil {
		if f := s.failed.Load(); f != nil {
			err = *f
		}
	}
	return err
}
