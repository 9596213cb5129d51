// Package lease is the JDBC lease lock for database master/slave: several
// brokers share one database; the one holding the lease row serves, the
// others wait as standby and take over when the lease expires.
//
// # The row
//
// lossbench_lock (created by broker/sqlstore's schema) has one row, id 1:
//
//	owner       who holds the lease ('' after a Release)
//	epoch       incremented by every takeover: the fencing token
//	expires_ms  the holder's wall-clock deadline; changed by every renewal
//	            (it only ever increases), so it also versions the row
//
// # Expiry without synchronised clocks
//
// Nobody compares wall clocks. A standby reads the row every Poll; when it
// has seen the same (owner, epoch, expires_ms) for TTL on its OWN monotonic
// clock, the holder has not renewed for at least TTL, and the standby takes
// over with a compare-and-set UPDATE (epoch+1) conditioned on exactly that
// version: of several standbys, one wins. A released row (owner ”) is
// taken at once.
//
// The holder renews every Renew. It considers itself master only until
// (start of its last successful renewal) + TTL - Margin on its own
// monotonic clock: the renewal's UPDATE committed after that start, so
// every standby first saw the new version after it and cannot take over
// before start + TTL. Margin absorbs clock rate differences and the time
// between a Held check and the acknowledgement it guards. When a renewal
// finds the row taken, or the deadline passes without one, Lost is closed.
//
// # Fencing
//
// A process paused past its lease (GC, SIGSTOP, a VM migration) may wake
// up believing it is master. Every commit of a fenced store therefore
// checks, inside its transaction, that the row's epoch is still the one
// this Lease acquired (Fence, used as sqlstore.Options.Fence): SELECT ...
// FOR SHARE on PostgreSQL, LOCK IN SHARE MODE on MariaDB (the takeover's
// UPDATE waits for the commit, so the commit is ordered before it), and on
// SQLite under the write lock its BEGIN IMMEDIATE already holds. A fenced
// commit fails with ErrFenced and fails the store. Guard wraps any store
// so that a Write is refused, and not acknowledged, once Held is false.
package lease

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/sqlstore"
)

// ErrFenced is wrapped by every error of a write refused because this
// broker no longer holds the lease (role.ErrFenced).
var ErrFenced = role.ErrFenced

// Defaults for Options.
const (
	DefaultRenew  = role.DefaultRenew
	DefaultTTL    = role.DefaultTTL
	DefaultMargin = role.DefaultMargin
)

// Clock reads the time (role.Clock).
type Clock = role.Clock

// Options configure a Lease (role.TermOptions: Renew, TTL, Margin, Poll,
// Clock, Logf); the zero value is the default.
type Options = role.TermOptions

// Status is what /readyz and /status show (role.Status).
type Status = role.Status

// Lease is one broker's claim on the lock row, a role.Lock. It is
// acquired at most once; after it is lost or released, make a new one to
// stand by again.
type Lease struct {
	db      *sql.DB
	dialect string
	owner   string
	o       Options
	term    *role.Term

	mu    sync.Mutex
	epoch int64
	seen  string // owner of the row as last read, for Status
}

var _ role.Lock = (*Lease)(nil)

// New returns a standby lease on db (opened with sqlstore.OpenDB, of that
// dialect) for owner, a name unique among the brokers sharing the
// database (e.g. host:port).
func New(db *sql.DB, dialect, owner string, opts Options) *Lease {
	term := role.NewTerm(opts)
	return &Lease{db: db, dialect: dialect, owner: owner, o: term.Options(), term: term}
}

func (l *Lease) logf(format string, args ...any) {
	if l.o.Logf != nil {
		l.o.Logf(format, args...)
	}
}

func (l *Lease) ph(i int) string {
	if l.dialect == "postgres" {
		return fmt.Sprintf("$%d", i)
	}
	return "?"
}

// version is what a standby watches: any renewal or takeover changes it.
type version struct {
	owner      string
	epoch, exp int64
}

func (l *Lease) read(ctx context.Context) (version, error) {
	var v version
	err := l.db.QueryRowContext(ctx, "SELECT owner, epoch, expires_ms FROM lossbench_lock WHERE id = 1").Scan(&v.owner, &v.epoch, &v.exp)
	if err != nil {
		return v, fmt.Errorf("lease: read lock row: %w", err)
	}
	return v, nil
}

// Acquire waits as standby until this broker holds the lease, and returns
// its epoch. It creates the schema if the database has none. It returns
// ctx's error if ctx ends first, and fails on database errors only while
// they persist past TTL (a standby rides out a database restart).
func (l *Lease) Acquire(ctx context.Context) (int64, error) {
	if l.term.Ended() || l.Epoch() != 0 {
		return 0, errors.New("lease: Acquire on a lease already acquired or lost")
	}
	var (
		seen     version
		seenAt   time.Time
		have     bool
		errSince time.Time
		migrated bool
	)
	t := time.NewTicker(l.o.Poll)
	defer t.Stop()
	for {
		if l.term.Ended() {
			return 0, errors.New("lease: released while acquiring")
		}
		var v version
		// Brokers starting together may race on CREATE TABLE IF NOT
		// EXISTS (PostgreSQL then reports a duplicate type): retried.
		var err error
		if !migrated {
			err = sqlstore.Migrate(ctx, l.db, l.dialect)
			migrated = err == nil
		}
		if migrated {
			v, err = l.read(ctx)
		}
		now := l.o.Clock.Now()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if errSince.IsZero() {
				errSince = now
			} else if now.Sub(errSince) > l.o.TTL {
				return 0, err
			}
		case !have || v != seen:
			errSince = time.Time{}
			seen, seenAt, have = v, now, true
			l.mu.Lock()
			l.seen = v.owner
			l.mu.Unlock()
		}
		if err == nil && (seen.owner == "" || now.Sub(seenAt) >= l.o.TTL) {
			epoch, ok, err := l.takeOver(ctx, seen)
			if err != nil && ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if ok {
				return epoch, nil
			}
			if err != nil {
				l.logf("lease: take over: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// takeOver tries the compare-and-set from the version seen.
func (l *Lease) takeOver(ctx context.Context, seen version) (int64, bool, error) {
	start := l.o.Clock.Now()
	exp := max(seen.exp+1, start.Add(l.o.TTL).UnixMilli())
	res, err := l.db.ExecContext(ctx, fmt.Sprintf(
		"UPDATE lossbench_lock SET owner = %s, epoch = %s, expires_ms = %s WHERE id = 1 AND owner = %s AND epoch = %s AND expires_ms = %s",
		l.ph(1), l.ph(2), l.ph(3), l.ph(4), l.ph(5), l.ph(6)),
		l.owner, seen.epoch+1, exp, seen.owner, seen.epoch, seen.exp)
	if err != nil {
		return 0, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return 0, false, err // someone else changed the row first
	}
	l.mu.Lock()
	l.epoch, l.seen = seen.epoch+1, l.owner
	l.mu.Unlock()
	if !l.term.Begin(start, l.renew) { // Release was called while we stood by
		l.mu.Lock()
		l.epoch = 0
		l.mu.Unlock()
		_, err := l.db.ExecContext(ctx, fmt.Sprintf(
			"UPDATE lossbench_lock SET owner = '', expires_ms = expires_ms + 1 WHERE id = 1 AND owner = %s AND epoch = %s",
			l.ph(1), l.ph(2)), l.owner, seen.epoch+1)
		return 0, false, errors.Join(errors.New("lease: released while acquiring"), err)
	}
	l.logf("lease: %s is master with epoch %d (took over from %q, epoch %d)", l.owner, seen.epoch+1, seen.owner, seen.epoch)
	return seen.epoch + 1, true, nil
}

// renew is the term's role.RenewFunc: it extends the lease from start.
func (l *Lease) renew(ctx context.Context, start time.Time) (taken bool, err error) {
	exp := start.Add(l.o.TTL).UnixMilli()
	// expires_ms must change for standbys (and MariaDB's affected-rows
	// count) to see the renewal, even if the clock did not move.
	res, err := l.db.ExecContext(ctx, fmt.Sprintf(
		"UPDATE lossbench_lock SET expires_ms = CASE WHEN expires_ms >= %s THEN expires_ms + 1 ELSE %s END WHERE id = 1 AND owner = %s AND epoch = %s",
		l.ph(1), l.ph(2), l.ph(3), l.ph(4)), exp, exp, l.owner, l.Epoch())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n != 1, nil
}

// Lost is closed when this broker stops being master: the lease expired
// without renewal, was taken over, or was released.
func (l *Lease) Lost() <-chan struct{} { return l.term.Lost() }

// Held reports whether this broker is master now: acquired, not lost, and
// its own clock still before the end of the lease minus the margin.
func (l *Lease) Held() bool { return l.term.Held() }

// Epoch returns the epoch acquired (0 before Acquire).
func (l *Lease) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// ValidUntil returns the time, on the lease's clock, until which this
// broker is master unless it renews (zero before Acquire).
func (l *Lease) ValidUntil() time.Time { return l.term.ValidUntil() }

// Status returns the lease's state.
func (l *Lease) Status() Status {
	l.mu.Lock()
	st := Status{Owner: l.owner, Holder: l.seen, Epoch: l.epoch}
	l.mu.Unlock()
	return l.term.Status(st)
}

// Fence is a sqlstore.Fence: inside tx, it checks that the lock row still
// carries this lease's owner and epoch, locking it against a takeover until
// tx ends. It fails with ErrFenced otherwise, or when Held is false.
func (l *Lease) Fence(ctx context.Context, tx *sql.Tx) error {
	if !l.Held() {
		return fmt.Errorf("%w: %s's lease (epoch %d) has expired", ErrFenced, l.owner, l.Epoch())
	}
	q := "SELECT owner, epoch FROM lossbench_lock WHERE id = 1"
	switch l.dialect {
	case "postgres":
		q += " FOR SHARE"
	case "mysql":
		q += " LOCK IN SHARE MODE"
	}
	var owner string
	var epoch int64
	if err := tx.QueryRowContext(ctx, q).Scan(&owner, &epoch); err != nil {
		return fmt.Errorf("lease: fence: %w", err)
	}
	if mine := l.Epoch(); epoch != mine || owner != l.owner {
		return fmt.Errorf("%w: %s holds epoch %d, the lease row says %q epoch %d", ErrFenced, l.owner, mine, owner, epoch)
	}
	return nil
}

// Release gives the lease up: this broker stops being master at once, and
// a standby can take over without waiting for the lease to expire.
func (l *Lease) Release() error {
	l.term.Stop()
	epoch := l.Epoch()
	if epoch == 0 {
		return nil // never acquired
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.o.TTL)
	defer cancel()
	_, err := l.db.ExecContext(ctx, fmt.Sprintf(
		"UPDATE lossbench_lock SET owner = '', expires_ms = expires_ms + 1 WHERE id = 1 AND owner = %s AND epoch = %s",
		l.ph(1), l.ph(2)), l.owner, epoch)
	if err != nil {
		return fmt.Errorf("lease: release: %w", err)
	}
	return nil
}
