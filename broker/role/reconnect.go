package role

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/admin"
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

// ReconnectOptions make the machine ride out a lost database
// connection of the jdbc store instead of failing stop.
type ReconnectOptions struct {
	// Max gives up (exit 1) after one outage this long; 0 never.
	Max time.Duration
	// Rides tells a failure to ride out (a lost connection) from one to
	// fail stop on.
	Rides func(error) bool
	// FailMessage names a failure it rides in the clients' ERROR frames.
	FailMessage string
}

// reconnector rides out a lost database connection of the jdbc store
// (--db-reconnect): the broker whose store failed has already stopped
// acknowledging and sent every client an ERROR; the reconnector stops it
// and its listener, retries with backoff until the database answers, and
// hands back a new session that recovered everything from the database.
// The database is the only truth: a commit whose outcome was unknown is
// there or not, and a client's retry of it is caught by the dedup window
// that Recover rebuilds from the stored messages.
//
// Only an error ReconnectOptions.Rides accepts is ridden out; any other
// store error, at run time or while reconnecting, fails stop.
type reconnector struct {
	o    ReconnectOptions
	max  time.Duration // give up after an outage this long; 0 never
	bo   *backoff
	logf func(string, ...any)
	now  func() time.Time

	mu    sync.Mutex
	st    admin.ReconnectState
	since time.Time // start of the current outage
}

// newReconnector returns the reconnector for o.
func newReconnector(o ReconnectOptions, logf func(string, ...any)) *reconnector {
	return &reconnector{
		o:    o,
		max:  o.Max,
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
	if r.o.Rides(err) {
		return r.o.FailMessage
	}
	return ""
}

// rides reports whether the broker's failure err is one to reconnect
// after.
func (r *reconnector) rides(err error) bool { return r != nil && r.o.Rides(err) }

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
		case !r.o.Rides(err):
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
	return ss.openOrSignal(sigs, nil, reconnectConnect)
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
