package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/lossbench/lossbench/broker/admin"
	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/lease"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

// leaseRun is refbroker's side of database master/slave (--lease): a
// broker stands by, its admin up and no STOMP listener (so clients fail
// over to the master), until it holds the lease row; then it opens its
// store fenced by the lease and serves until it stops or loses the lease,
// which fails it stop. It never waits to become master again: a new
// process does.
type leaseRun struct {
	l    *lease.Lease
	db   *sql.DB // the lease's own handle, apart from the store's
	logf func(string, ...any)
}

// openLease opens the database the store will use and a standby lease on
// it.
func openLease(cfg *config.Config, logf func(string, ...any)) (*leaseRun, error) {
	opts, where, err := sqlOptions(cfg, logf)
	if err != nil {
		return nil, err
	}
	db, dialect, err := sqlstore.OpenDB(opts)
	if err != nil {
		return nil, fmt.Errorf("lease: open database (%s): %w", where, err)
	}
	owner := cfg.LeaseOwner
	if owner == "" {
		owner = defaultOwner(cfg.Listen)
	}
	l := lease.New(db, dialect, owner, lease.Options{Renew: cfg.LeaseRenew, TTL: cfg.LeaseTTL, Margin: cfg.LeaseMargin, Logf: logf})
	logf("lease: %s stands by on %s (renew %v, ttl %v, margin %v)", owner, where, cfg.LeaseRenew, cfg.LeaseTTL, cfg.LeaseMargin)
	return &leaseRun{l: l, db: db, logf: logf}, nil
}

// defaultOwner is "<hostname>/<listen address>", plus the pid when the
// port is 0: two brokers on one host must never share an owner, or both
// would pass each other's fence.
func defaultOwner(listen string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	owner := host + "/" + listen
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" || port == "" {
		owner += fmt.Sprintf("/pid%d", os.Getpid())
	}
	return owner
}

// standBy waits until this broker holds the lease. A signal meanwhile
// ends the wait with stopped true (a clean exit); err is a database that
// stayed unusable past the lease's TTL.
func (r *leaseRun) standBy(sigs <-chan os.Signal) (stopped bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		epoch int64
		err   error
	}
	done := make(chan result, 1)
	go func() {
		epoch, err := r.l.Acquire(ctx)
		done <- result{epoch, err}
	}()
	select {
	case s := <-sigs:
		r.logf("%v while standing by: exiting", s)
		cancel()
		<-done
		return true, nil
	case res := <-done:
		if res.err != nil {
			return false, fmt.Errorf("lease: %w", res.err)
		}
		r.logf("lease: master with epoch %d", res.epoch)
		return false, nil
	}
}

// fence is the store's commit check (sqlstore.Options.Fence).
func (r *leaseRun) fence() sqlstore.Fence { return r.l.Fence }

// guard wraps st so that nothing is acknowledged without the lease.
func (r *leaseRun) guard(st store.Store) store.Store { return lease.Guard(st, r.l) }

// lost is closed when the lease is lost.
func (r *leaseRun) lost() <-chan struct{} { return r.l.Lost() }

// lostErr says why the lease was lost.
func (r *leaseRun) lostErr() error {
	st := r.l.Status()
	return fmt.Errorf("lease lost: %s (%s, epoch %d)", st.Reason, st.Owner, st.Epoch)
}

// state is the lease as the admin endpoint shows it.
func (r *leaseRun) state() admin.LeaseState {
	st := r.l.Status()
	return admin.LeaseState{Role: st.Role, Owner: st.Owner, Holder: st.Holder, Epoch: st.Epoch,
		ValidForMs: st.ValidFor.Milliseconds(), Reason: st.Reason}
}

// close releases the lease, so that a standby takes over at once, and
// closes the lease's database handle. Call it after the store is closed.
func (r *leaseRun) close() {
	if err := r.l.Release(); err != nil {
		r.logf("%v", err)
	}
	r.db.Close()
}

// handlerSwitch serves the admin endpoints of whatever broker exists:
// none while standing by, then the master's.
type handlerSwitch struct{ h atomic.Pointer[http.Handler] }

func (s *handlerSwitch) set(h http.Handler) { s.h.Store(&h) }

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
