package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/admin"
	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/sqlstore"
)

// Reconnection timings (--db-reconnect).
const (
	reconnectFirst = 100 * time.Millisecond // first delay, doubling
	reconnectCap   = 5 * time.Second        // longest delay
	// reconnectConnect bounds one attempt to open the store: a database
	// that drops packets instead of refusing them costs this much per
	// attempt.
	reconnectConnect = 10 * time.Second
	// reconnectClose bounds closing the store whose database was lost.
	reconnectClose = 10 * time.Second
)

// failMessageDB is the ERROR frames' message header when the broker stops
// for a lost database connection and reconnects.
const failMessageDB = "database unavailable, the broker is reconnecting"

// reconnector rides out a lost database connection of the jdbc store
// (--db-reconnect): the broker whose store failed has already stopped
// acknowledging and sent every client an ERROR; the reconnector stops it
// and its listener, retries with backoff until the database answers, and
// hands back a new session that recovered everything from the database.
// The database is the only truth: a commit whose outcome was unknown is
// there or not, and a client's retry of it is caught by the dedup window
// that Recover rebuilds from the stored messages.
//
// Only a connection error (sqlstore.IsConnectionError) is ridden out; any
// other store error, at run time or while reconnecting, fails stop.
type reconnector struct {
	max  time.Duration // give up after an outage this long; 0 never
	bo   *backoff
	logf func(string, ...any)
	now  func() time.Time

	mu    sync.Mutex
	st    admin.ReconnectState
	since time.Time // start of the current outage
}

// newReconnector returns the reconnector for cfg, or nil when its store
// fails stop on a lost database: every store but jdbc (journaled-jdbc
// acknowledges from its journal while the database is away, and a journal
// error must never be retried), a --lease master (a master that loses its
// database loses its lease; a standby takes over), and --db-reconnect=false.
func newReconnector(cfg *config.Config, logf func(string, ...any)) *reconnector {
	if cfg.Store != "jdbc" || cfg.Lease || !cfg.DBReconnect {
		return nil
	}
	return &reconnector{
		max:  cfg.DBReconnectMax,
		bo:   newBackoff(reconnectFirst, reconnectCap, uint64(time.Now().UnixNano())),
		logf: logf,
		now:  time.Now,
		st:   admin.ReconnectState{State: "serving"},
	}
}

// state is the connection as the admin endpoint shows it.
func (r *reconnector) state() admin.ReconnectState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	if st.State == admin.Reconnecting {
		st.DownForMs = r.now().Sub(r.since).Milliseconds()
	}
	return st
}

// failMessage is server.Options.FailMessage: a lost connection is named
// as such to clients, who may retry elsewhere or later.
func (r *reconnector) failMessage(err error) string {
	if sqlstore.IsConnectionError(err) {
		return failMessageDB
	}
	return ""
}

// rides reports whether the broker's failure err is one to reconnect
// after.
func (r *reconnector) rides(err error) bool { return r != nil && sqlstore.IsConnectionError(err) }

// reconnect rides out an outage that began with cause: it stops old (the
// broker that failed, its listener and store), then opens sessions with
// backoff until one serves. A signal meanwhile ends it with code 0; a
// non-connection error, or an outage past --db-reconnect-max, with code 1
// and no session.
func (r *reconnector) reconnect(cause error, old *session, sigs <-chan os.Signal, ss *sessions) (*session, int) {
	r.mu.Lock()
	r.since = r.now()
	r.st.State, r.st.Attempts, r.st.LastError = admin.Reconnecting, 0, cause.Error()
	r.st.Outages++
	r.mu.Unlock()
	r.logf("database connection lost: %v; not acknowledging, clients disconnected, STOMP listener closed; reconnecting (backoff %v to %v, give up after %s)",
		cause, reconnectFirst, reconnectCap, r.maxString())
	ss.show(nil)
	if err := old.stop(reconnectClose, r.logf); err != nil {
		r.logf("close the failed store: %v", err)
	}
	r.bo.reset()
	for attempt := 1; ; attempt++ {
		wait := r.bo.next()
		if r.max > 0 {
			left := r.max - r.now().Sub(r.since)
			if left <= 0 {
				r.logf("FATAL: database unavailable for %v (%d attempts, --db-reconnect-max %v): %s; exiting",
					r.down(), attempt-1, r.max, r.state().LastError)
				return nil, 1
			}
			wait = min(wait, left)
		}
		timer := time.NewTimer(wait)
		select {
		case s := <-sigs:
			timer.Stop()
			r.logf("%v while reconnecting to the database (down %v): exiting", s, r.down())
			return nil, 0
		case <-timer.C:
		}
		sess, stopped, err := r.attempt(sigs, ss)
		switch {
		case stopped:
			return nil, 0
		case err == nil:
			d := r.down()
			r.mu.Lock()
			r.st = admin.ReconnectState{State: "serving", Outages: r.st.Outages, LastOutageMs: d.Milliseconds()}
			r.mu.Unlock()
			r.logf("database back: outage lasted %v (%d attempts); serving again", d, attempt)
			return sess, 0
		case !sqlstore.IsConnectionError(err):
			r.logf("FATAL: reconnecting after %v: %v; exiting without retrying", r.down(), err)
			return nil, 1
		}
		r.mu.Lock()
		r.st.Attempts, r.st.LastError = attempt, err.Error()
		r.mu.Unlock()
		r.logf("reconnect attempt %d (down %v): %v", attempt, r.down(), err)
	}
}

// attempt opens one session; a signal meanwhile cancels it and reports
// stopped.
func (r *reconnector) attempt(sigs <-chan os.Signal, ss *sessions) (s *session, stopped bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		s   *session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := ss.open(ctx, nil, reconnectConnect)
		done <- result{s, err}
	}()
	select {
	case sig := <-sigs:
		r.logf("%v while reconnecting to the database (down %v): exiting", sig, r.down())
		cancel()
		if res := <-done; res.s != nil {
			res.s.stop(0, r.logf)
		}
		return nil, true, nil
	case res := <-done:
		return res.s, false, res.err
	}
}

// down is how long the current outage has lasted.
func (r *reconnector) down() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now().Sub(r.since).Round(time.Millisecond)
}

func (r *reconnector) maxString() string {
	if r.max == 0 {
		return "never"
	}
	return fmt.Sprint(r.max)
}
