package role

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/lossbench/lossbench/broker/server"
	"github.com/lossbench/lossbench/broker/store"
)

// session is one broker over one opened store, serving on a listener:
// what a reconnection replaces whole, since a broker that failed stays
// failed.
type session struct {
	st     store.Store
	b      *server.Broker
	served chan error // Serve's result
}

// sessions opens sessions, all alike.
type sessions struct {
	m    *Machine
	opts server.Options
	// show hands the admin endpoint a broker as soon as it exists, so that
	// /status shows the recovery.
	show func(*server.Broker)
}

// open opens the store, recovers a broker over it and serves on ln, or,
// when ln is nil, on a new listener (Options.Bind or Listen) made only once the
// broker can serve (while reconnecting, clients are refused rather than
// left waiting). connect, when not 0, bounds opening the store.
func (ss *sessions) open(ctx context.Context, ln net.Listener, connect time.Duration) (*session, error) {
	o := &ss.m.o
	octx := ctx
	if connect > 0 {
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(ctx, connect)
		defer cancel()
	}
	st, err := o.Open(octx)
	if err != nil {
		return nil, err
	}
	if o.Lock != nil {
		st = Guard(st, o.Lock)
	}
	b := server.New(st, ss.opts)
	ss.show(b)
	o.Logf("%s, version %s", o.Describe, o.Version)
	abandon := func(err error) (*session, error) {
		ss.show(nil)
		b.Shutdown(context.Background()) // stops its acker; it never served
		st.Close()
		return nil, err
	}
	if err := b.Recover(ctx); err != nil {
		return abandon(err)
	}
	if ln == nil {
		if ln, err = o.listen(); err != nil {
			return abandon(fmt.Errorf("--listen %s: %w", o.Listen, err))
		}
	}
	s := &session{st: st, b: b, served: make(chan error, 1)}
	go func() { s.served <- b.Serve(ln) }()
	return s, nil
}

// openOrSignal opens a session as open does; a signal meanwhile cancels
// it and reports stopped (a store that does not heed ctx, such as a
// journal waiting for its directory lock, is left behind: the process is
// exiting).
func (ss *sessions) openOrSignal(sigs <-chan os.Signal, ln net.Listener, connect time.Duration) (s *session, stopped bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		s   *session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := ss.open(ctx, ln, connect)
		done <- result{s, err}
	}()
	select {
	case sig := <-sigs:
		ss.m.o.Logf("%v while opening the store: exiting", sig)
		cancel()
		select {
		case res := <-done:
			if res.s != nil {
				res.s.stop(0, ss.m.o.Logf)
			}
		case <-time.After(failStopBound):
		}
		return nil, true, nil
	case res := <-done:
		return res.s, false, res.err
	}
}

// stop shuts the broker down (it stops accepting; each connection
// finishes the frame it is performing and flushes) and closes the store.
// With bound > 0 it gives the connections and then the store at most that
// long each and then leaves them behind: a database that is gone may hold
// a commit in flight until the commit deadline. It returns the store's
// close error.
func (s *session) stop(bound time.Duration, logf func(string, ...any)) error {
	wait := shutdownTimeout
	if bound > 0 {
		wait = min(wait, bound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.b.Shutdown(ctx) }()
	var leftBehind <-chan time.Time // nil: wait for Shutdown
	if bound > 0 {
		// Past ctx, Shutdown closes the connections and still waits for
		// those blocked inside a store write, which only the store's own
		// deadline ends: a second for the forced close to take effect.
		leftBehind = time.After(wait + time.Second)
	}
	select {
	case err := <-shut:
		if err != nil {
			logf("shutdown: %v", err)
		}
	case <-leftBehind:
		logf("shutdown: connections still waiting on the store after %v; left behind", wait+time.Second)
	}
	if bound <= 0 {
		return s.st.Close()
	}
	closed := make(chan error, 1)
	go func() { closed <- s.st.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(bound):
		return errors.New("store still closing after " + bound.String() + "; left behind")
	}
}
