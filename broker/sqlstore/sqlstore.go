// Package sqlstore is the "jdbc" store: messages kept in a SQL database
// through database/sql, on PostgreSQL (pgx), MariaDB/MySQL
// (go-sql-driver/mysql) or SQLite (modernc.org/sqlite, the embedded default:
// one file in WAL mode with synchronous=FULL, so a COMMIT is on disk).
//
// # Schema (version 1)
//
// In the spirit of ActiveMQ's ACTIVEMQ_MSGS, ACTIVEMQ_ACKS and ACTIVEMQ_LOCK;
// created or migrated on Open, recorded in lossbench_schema_version:
//
//	lossbench_msgs            one row per unacknowledged message
//	  seq      BIGINT PRIMARY KEY   store.Message.Seq
//	  queue    binary               destination, bytes as received
//	  headers  binary               headers, encoded as below
//	  body     binary               payload
//	lossbench_seq             the high-water mark: one row (id = 1)
//	  id INTEGER PRIMARY KEY, high BIGINT   highest seq ever deleted
//	lossbench_lock            the lease for database master/slave (id = 1;
//	  id, owner, epoch, expires_ms          kept by broker/lease)
//	lossbench_schema_version  version INTEGER: the migration applied last
//
// The journaled-jdbc store (broker/store/journaled) adds its own table,
// lossbench_checkpoint, and writes these tables in its checkpoints through
// WriteTx (see shared.go).
//
// Acks delete the message's row; there is no acks table. A queue message is
// consumed once, so an ack row would only be joined against and later
// garbage-collected; a DELETE of the batch's seqs in the same transaction
// keeps the table as small as the backlog and Recover a plain ordered scan
// of the primary key. ActiveMQ keeps ACTIVEMQ_ACKS for durable topic
// subscriptions, which lossbench does not have.
//
// Seqs never repeat: the next seq after Open is 1 + max(highest seq in
// lossbench_msgs, lossbench_seq.high), and every commit that deletes rows
// raises high to the highest seq assigned so far (a commit that only
// inserts needs no update: its rows carry their seqs).
//
// The headers column holds a version byte (1), then the number of headers
// and each key and value, every count and length an unsigned varint:
//
//	+----+-------+------+-----+--------+-------+----
//	| 01 | count | klen | key | vlen   | value | ...
//	+----+-------+------+-----+--------+-------+----
//
// Queue and headers are kept as bytes, not text, so that no destination or
// header value (NUL, invalid UTF-8) can make an INSERT fail and with it the
// store.
//
// # Group commit
//
// One writer goroutine forms groups. When a store.Batch is waiting and a
// writer connection is free, it takes that batch and every other batch
// waiting at that moment (up to Options.BatchMax rows) and commits them in
// ONE transaction on that connection: on PostgreSQL a single statement
// (INSERT ... SELECT FROM unnest, DELETE ... = ANY, the high-water UPDATE,
// in one WITH), so one round trip per commit; on MariaDB
// and SQLite one multi-row INSERT, one DELETE ... IN and the UPDATE inside
// BEGIN ... COMMIT. Each Write returns only after COMMIT has returned.
//
// PostgreSQL has two writer connections, so a second group forms and
// commits while the first one's WAL flush is under way (the server merges
// concurrent flushes); with one, 16 producers split into two alternating
// groups of about 8 and each waits out the other's flush (on a loaded
// 2-core machine both measured about the same; Options.InFlight sets it).
// Seqs are handed out in group order, and no ack can refer to a message of a commit still
// in flight (its Write has not returned), so commits finishing out of
// order change nothing that recovery sees. MariaDB and SQLite keep one:
// SQLite has a single writer lock, and two concurrent group commits on
// InnoDB were seen to deadlock (error 1213, gap locks of DELETE ... IN
// against the other's multi-row INSERT), which would fail the store.
//
// # Failure
//
// A failed commit (the connection lost, the database killed, a disk error)
// fails the store: that Write and every later one return an error wrapping
// store.ErrFailed, and the broker fails stop. Nothing in the failed commit
// was acknowledged to anyone; the commit may nevertheless have reached the
// database (the connection died after COMMIT was sent), so its messages may
// come back on the next start: a duplicate of an unacknowledged send, which
// the contract allows, never a loss. A failed Store stays failed; when
// IsConnectionError says the connection was lost, refbroker opens a new
// one once the database answers again, and Recover rebuilds the broker
// from what is committed.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// Defaults for Options.
const (
	DefaultBatchMax   = 1000
	DefaultBodyBudget = 64 << 20
	// DefaultCommitTimeout bounds a group commit: a database that stops
	// answering without closing the connection (a black hole) fails the
	// store after this long instead of hanging every producer forever.
	DefaultCommitTimeout = 30 * time.Second
)

// Options configures Open.
type Options struct {
	// Driver is "postgres", "mysql" (MariaDB too) or "sqlite"; empty means
	// sqlite.
	Driver string
	// DSN is the driver's data source name (pgx: a postgres:// URL or
	// key=value string; mysql: user:pass@tcp(host:port)/db).
	DSN string
	// Path is the SQLite database file when DSN is empty.
	Path string
	// BatchMax is the most rows (adds plus acks) one group commit carries
	// (0: DefaultBatchMax). One larger Batch still commits, alone.
	BatchMax int
	// BodyBudget is how many bytes of bodies Recover hands out; past it,
	// messages come with Body nil and are read back through Load
	// (0: DefaultBodyBudget; negative: no bodies at all).
	BodyBudget int64
	// InFlight is how many group commits may be under way at once on
	// PostgreSQL, each on its own connection (0: 2). MariaDB and SQLite
	// always use 1 (see the package doc).
	InFlight int
	// Logf, when set, reports start-up and the failure that stopped the
	// store.
	Logf func(string, ...any)
	// CommitTimeout is how long a group commit may take; past it the
	// commit's outcome is unknown (nothing of it is acknowledged) and the
	// store fails, as on any failed commit (0: DefaultCommitTimeout;
	// negative: no limit). On MariaDB it is also the connection's read and
	// write timeout unless the DSN sets them, since its driver's COMMIT
	// does not watch the context.
	CommitTimeout time.Duration
	// TxIdleTimeout is how long the database server lets a session sit
	// idle inside a transaction before it ends the session and so rolls
	// back and releases its locks (PostgreSQL
	// idle_in_transaction_session_timeout, MariaDB
	// idle_transaction_timeout, rounded up to whole seconds), unless the
	// DSN sets it. A broker cut off mid-commit leaves a half-open
	// connection the server cannot tell from a slow one; with a lease
	// (Fence) its transaction holds the lease row's lock and would block
	// a standby's takeover until TCP gave up, hours later. 0: the commit
	// deadline; negative: the server's own setting.
	TxIdleTimeout time.Duration
	// Fence, when set, is called inside every group commit's transaction
	// before it writes (broker/lease's Lease.Fence checks that the lease's
	// epoch is still ours). An error aborts that commit and fails the
	// store, as any failed commit does.
	Fence Fence
}

// seqGap is how many seqs each Open skips past the highest it finds. An
// earlier session's commit whose outcome was unknown (the connection was
// cut, the broker killed or reconnected) can still land after this
// session recovered, when a partition heals and its held segments reach
// the server; the seqs it carries were handed out above the stored ones
// but by at most the commits in flight (a few groups of BatchMax rows, or
// one larger transaction). Such a zombie row is a duplicate of an
// unacknowledged send, which the contract allows; with the gap it cannot
// take a seq this session hands out, which would fail a later commit on
// the primary key. 2^32 per Open leaves 2^31 opens in a BIGINT.
const seqGap = 1 << 32

// Store is a store.Store over a SQL database. It also implements
// store.Loader, store.Statser and store.Namer.
type Store struct {
	db       *sql.DB
	wconns   []*sql.Conn // the committers' connections
	inFlight int
	free     chan *sql.Conn // connections with no commit in flight
	d        *dialect
	opts     Options
	reqs     chan *request
	writerD  chan struct{} // closed when the writer has exited

	// mu guards closed against Write sending on reqs after Close.
	mu     sync.RWMutex
	closed bool

	// Owned by the writer goroutine (and Open, before it starts).
	next uint64 // next seq to hand out
	// prepared counts prepared groups (writer goroutine only).
	prepared uint64
	live     map[uint64]struct{} // seqs of unacknowledged messages

	stats statsBox
}

// request is one Write waiting for its commit.
type request struct {
	b    *store.Batch
	done chan error // buffered: the writer never blocks on a gone waiter
}

// Open connects to the database, creates or migrates the schema, reads the
// seqs of unacknowledged messages and the high-water mark, and starts the
// writer. The database named in DSN must exist.
func Open(ctx context.Context, opts Options) (*Store, error) { return open(ctx, opts, true) }

// OpenShared opens the database as Open does (creating or migrating the
// schema) for a package that writes through WriteTx in transactions of
// its own (broker/store/cjdbc, broker/store/journaled): without the
// writer, its connections and the read of the live seqs, which only Write
// uses. Write on it fails; Recover, Load, DB, Dialect and Close work.
func OpenShared(ctx context.Context, opts Options) (*Store, error) { return open(ctx, opts, false) }

func open(ctx context.Context, opts Options, writer bool) (*Store, error) {
	d, dsn, err := pickDialect(opts)
	if err != nil {
		return nil, err
	}
	if opts.BatchMax <= 0 {
		opts.BatchMax = DefaultBatchMax
	}
	inFlight := d.inFlight
	if opts.InFlight > 0 && d.name == "postgres" {
		inFlight = opts.InFlight
	}
	if opts.BodyBudget == 0 {
		opts.BodyBudget = DefaultBodyBudget
	}
	db, err := openSQL(d, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", d.name, err)
	}
	db.SetMaxOpenConns(d.maxConns)
	db.SetMaxIdleConns(d.maxConns)
	s := &Store{db: db, d: d, opts: opts, inFlight: inFlight, live: make(map[uint64]struct{})}
	if writer {
		s.reqs, s.writerD = make(chan *request, opts.BatchMax), make(chan struct{})
	}
	if err := s.start(ctx, writer); err != nil {
		for _, c := range s.wconns {
			c.Close()
		}
		db.Close()
		return nil, err
	}
	if !writer {
		s.logf("sqlstore: %s open, shared: schema v%d", d.name, len(d.migrations))
		return s, nil
	}
	go s.writer()
	s.logf("sqlstore: %s open: schema v%d, %d unacknowledged messages, next seq %d",
		d.name, len(d.migrations), len(s.live), s.next)
	return s, nil
}

// start connects and migrates the schema, then, for the writer, reads the
// live seqs and takes the committers' connections.
func (s *Store) start(ctx context.Context, writer bool) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: connect %s: %w", s.d.name, err)
	}
	if err := migrate(ctx, s.db, s.d); err != nil {
		return err
	}
	if !writer {
		return nil
	}
	high, err := s.loadLive(ctx)
	if err != nil {
		return err
	}
	// Skip seqGap seqs: a commit of an earlier session (this process's
	// before a reconnect, or a killed one's) may still be on its way
	// through a partition that heals, and must not collide with ours.
	s.next = high + 1 + seqGap
	s.free = make(chan *sql.Conn, s.inFlight)
	for i := 0; i < s.inFlight; i++ {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("sqlstore: writer connection: %w", err)
		}
		s.wconns = append(s.wconns, c)
		s.free <- c
	}
	return nil
}

// loadLive reads the seqs of unacknowledged messages (the primary key
// only) so that acks of unknown messages are refused before they reach a
// shared transaction, and returns the highest seq ever handed out.
func (s *Store) loadLive(ctx context.Context) (uint64, error) {
	var high int64
	if err := s.db.QueryRowContext(ctx, "SELECT high FROM lossbench_seq WHERE id = 1").Scan(&high); err != nil {
		return 0, fmt.Errorf("sqlstore: read high-water: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT seq FROM lossbench_msgs ORDER BY seq")
	if err != nil {
		return 0, fmt.Errorf("sqlstore: read seqs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return 0, fmt.Errorf("sqlstore: read seqs: %w", err)
		}
		s.live[uint64(seq)] = struct{}{}
		high = max(high, seq)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlstore: read seqs: %w", err)
	}
	s.stats.setLive(len(s.live))
	return uint64(high), nil
}

// Name implements store.Namer: "jdbc/postgres", "jdbc/mysql", "jdbc/sqlite".
func (s *Store) Name() string { return "jdbc/" + s.d.name }

// Write implements store.Store: it returns once the commit carrying b has
// returned. If ctx ends first Write returns ctx's error, and b may or may
// not be committed (as with any lost reply); the store stays usable.
func (s *Store) Write(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	if err := s.stats.failure(); err != nil {
		s.mu.RUnlock()
		return err
	}
	if len(b.Adds) == 0 && len(b.Acks) == 0 {
		s.mu.RUnlock()
		return nil
	}
	if s.reqs == nil {
		s.mu.RUnlock()
		return errors.New("sqlstore: Write on a store opened with OpenShared (it writes through WriteTx only)")
	}
	r := &request{b: b, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits what is waiting, stops the writer and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.reqs != nil {
		close(s.reqs)
	}
	s.mu.Unlock()
	if s.writerD != nil {
		<-s.writerD
	}
	var err error
	for _, c := range s.wconns {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Stats implements store.Statser.
func (s *Store) Stats() map[string]float64 { return s.stats.snapshot() }

// statsBox holds counters shared between the writer and Stats.
type statsBox struct {
	mu          sync.Mutex
	commits     uint64
	batches     uint64
	inserted    uint64
	deleted     uint64
	bytes       uint64
	commitTime  time.Duration
	commitMax   time.Duration
	commitLast  time.Duration
	batchesLast int
	batchesMax  int
	rejected    uint64
	live        int
	liveOrder   uint64 // prepare order of the commit live is from
	failed      error
}

func (st *statsBox) setLive(n int) {
	st.mu.Lock()
	st.live = n
	st.mu.Unlock()
}

func (st *statsBox) failure() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.failed
}

func (st *statsBox) snapshot() map[string]float64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	failed := 0.0
	if st.failed != nil {
		failed = 1
	}
	perCommit := 0.0
	if st.commits > 0 {
		perCommit = float64(st.batches) / float64(st.commits)
	}
	return map[string]float64{
		"commits_total":          float64(st.commits),
		"writes_total":           float64(st.batches),
		"rows_inserted_total":    float64(st.inserted),
		"rows_deleted_total":     float64(st.deleted),
		"bytes_written_total":    float64(st.bytes),
		"writes_rejected_total":  float64(st.rejected),
		"commit_seconds_total":   st.commitTime.Seconds(),
		"commit_seconds_max":     st.commitMax.Seconds(),
		"commit_seconds_last":    st.commitLast.Seconds(),
		"writes_per_commit_avg":  perCommit,
		"writes_per_commit_last": float64(st.batchesLast),
		"writes_per_commit_max":  float64(st.batchesMax),
		"live_messages":          float64(st.live),
		"failed":                 failed,
	}
}
