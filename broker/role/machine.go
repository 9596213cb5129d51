package role

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/admin"
	"github.com/lossbench/lossbench/broker/server"
	"github.com/lossbench/lossbench/broker/store"
)

// shutdownTimeout bounds a clean shutdown's wait for the connections.
const shutdownTimeout = 10 * time.Second

// failStopBound bounds each step of the shutdown after a failure (the
// connections, then the store), so that a fail-stop ends the process
// even when the database holds a commit in flight.
const failStopBound = 3 * time.Second

// Options configure a Machine.
type Options struct {
	// Listen is the STOMP listen address, opened only by a master.
	Listen string
	// Bind, when set, opens the STOMP listener in place of net.Listen on
	// Listen (an inherited socket, broker/listenfd). It is called each
	// time the broker starts serving, and the listener is closed each time
	// it stops: clients must then be refused.
	Bind func() (net.Listener, error)
	// Version is shown by the admin endpoint and logged.
	Version string
	// Lock, when set, makes the broker stand by until it holds the lock,
	// serve through a Guard of it, and fail stop (exit 1) when Lost
	// closes. The machine releases it when it ends.
	Lock Lock
	// Open opens the store; ctx bounds opening a database. The machine
	// guards what it returns with Lock.
	Open func(ctx context.Context) (store.Store, error)
	// Describe names the store in the log line once it is open.
	Describe string
	// Server are the broker's options.
	Server server.Options
	// Reconnect, when set, rides out the store failures it accepts
	// (reconnect.go) instead of failing stop.
	Reconnect *ReconnectOptions
	// Replication, when set, is /status's replication (broker/replication).
	Replication func() any
	// Logf receives what the machine does.
	Logf func(format string, args ...any)
}

// listen opens the STOMP listener: Bind, or net.Listen on Listen.
func (o *Options) listen() (net.Listener, error) {
	if o.Bind != nil {
		return o.Bind()
	}
	return net.Listen("tcp", o.Listen)
}

// Machine is one broker process's role: standby, master, reconnecting,
// and lost (fail stop). It never becomes master again after losing its
// lock: a new process does.
type Machine struct {
	o     Options
	rc    *reconnector
	admin handlerSwitch
	aopts admin.Options
}

// New returns the machine for o.
func New(o Options) *Machine {
	m := &Machine{o: o}
	if o.Reconnect != nil {
		m.rc = newReconnector(*o.Reconnect, o.Logf)
	}
	m.aopts = admin.Options{Version: o.Version, Replication: o.Replication}
	if o.Lock != nil {
		m.aopts.Lease = m.lockState
	}
	if m.rc != nil {
		m.aopts.Reconnect = m.rc.state
		m.o.Server.FailMessage = m.rc.failMessage
	}
	m.admin.set(admin.Handler(nil, m.aopts))
	return m
}

// Admin is the admin endpoints (/healthz, /readyz, /metrics, /status) of
// whatever broker exists: none while standing by, then the master's.
func (m *Machine) Admin() http.Handler { return &m.admin }

// lockState is the lock as the admin endpoint shows it.
func (m *Machine) lockState() admin.LeaseState {
	st := m.o.Lock.Status()
	return admin.LeaseState{Role: st.Role, Owner: st.Owner, Holder: st.Holder, Epoch: st.Epoch,
		ValidForMs: st.ValidFor.Milliseconds(), Reason: st.Reason}
}

// Run runs the broker until a signal on sigs (exit code 0), a store
// failure or the loss of the lock (1), or a failure to start (2: a store
// or address that cannot be opened). A store failure that
// Options.Reconnect rides does not end it.
func (m *Machine) Run(sigs <-chan os.Signal) (code int) {
	logf := m.o.Logf
	startupErr := func(format string, args ...any) int {
		logf("startup failed: "+format, args...)
		return 2
	}
	if m.o.Lock != nil {
		// Released after the store is closed: the deferred call runs
		// after the shutdown below. After a failure the storage or
		// database holding the lock may hang (a stalled NFS mount): the
		// release is then bounded, and a standby takes over after the TTL.
		defer func() { m.release(code != 0) }()
	}
	ss := &sessions{m: m, opts: m.o.Server,
		show: func(b *server.Broker) { m.admin.set(admin.Handler(b, m.aopts)) }}
	var lost <-chan struct{} // nil without a lock: never closed
	if m.o.Lock != nil {
		stopped, err := m.standBy(sigs)
		if stopped {
			return 0
		}
		if err != nil {
			return startupErr("%v", err)
		}
		lost = m.o.Lock.Lost()
	}
	ln, err := m.o.listen()
	if err != nil {
		return startupErr("--listen %s: %v", m.o.Listen, err)
	}
	sess, stopped, err := ss.openOrSignal(sigs, ln, 0)
	if stopped {
		ln.Close()
		return 0
	}
	if err != nil {
		ln.Close()
		return startupErr("%v", err)
	}

	for stopping := false; !stopping; {
		select {
		case s := <-sigs:
			logf("%v: shutting down", s)
			stopping = true
		case <-sess.b.Failed():
			if err := sess.b.Err(); m.rc.rides(err) {
				next, c := m.rc.reconnect(err, sess, sigs, ss)
				if next == nil {
					return c
				}
				sess = next
				continue
			}
			logf("FATAL: %v; exiting without retrying", sess.b.Err())
			code, stopping = 1, true
		case <-lost:
			// Fail stop at once: no acknowledgement after this, an ERROR to
			// every client; the Guard already refuses writes.
			lockErr := m.lostErr()
			sess.b.Fail(lockErr)
			logf("FATAL: %v; exiting without retrying", lockErr)
			code, stopping = 1, true
		case err := <-sess.served:
			logf("FATAL: %v", err)
			code, stopping = 1, true
		}
	}
	// A failed broker acknowledges nothing more: waiting on a store whose
	// database stopped answering would only delay the exit of a fail-stop.
	var bound time.Duration
	if code != 0 {
		bound = failStopBound
	}
	if err := sess.stop(bound, logf); err != nil {
		logf("close store: %v", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 && sess.b.Err() != nil {
		logf("FATAL: %v", sess.b.Err())
		code = 1
	}
	if code == 0 {
		logf("stopped")
	}
	return code
}

// release releases the lock, waiting at most failStopBound when bounded.
func (m *Machine) release(bounded bool) {
	done := make(chan error, 1)
	go func() { done <- m.o.Lock.Release() }()
	var timeout <-chan time.Time
	if bounded {
		timeout = time.After(failStopBound)
	}
	select {
	case err := <-done:
		if err != nil {
			m.o.Logf("%v", err)
		}
	case <-timeout:
		m.o.Logf("lease: release still running after %v; left behind (a standby takes over after the TTL)", failStopBound)
	}
}

// standBy waits until this broker holds the lock. A signal meanwhile
// ends the wait with stopped true (a clean exit); err is a lock that
// could not be acquired (a database that stayed unusable past the TTL).
func (m *Machine) standBy(sigs <-chan os.Signal) (stopped bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		epoch int64
		err   error
	}
	done := make(chan result, 1)
	go func() {
		epoch, err := m.o.Lock.Acquire(ctx)
		done <- result{epoch, err}
	}()
	select {
	case s := <-sigs:
		m.o.Logf("%v while standing by: exiting", s)
		cancel()
		<-done
		return true, nil
	case res := <-done:
		if res.err != nil {
			return false, fmt.Errorf("lease: %w", res.err)
		}
		m.o.Logf("lease: master with epoch %d", res.epoch)
		return false, nil
	}
}

// lostErr says why the lock was lost.
func (m *Machine) lostErr() error {
	st := m.o.Lock.Status()
	return fmt.Errorf("lease lost: %s (%s, epoch %d)", st.Reason, st.Owner, st.Epoch)
}

// handlerSwitch serves the admin endpoints of whatever broker exists:
// none while standing by, then the master's.
type handlerSwitch struct{ h atomic.Pointer[http.Handler] }

func (s *handlerSwitch) set(h http.Handler) { s.h.Store(&h) }

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}
