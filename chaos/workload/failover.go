package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// Endpoint is one broker address a client may connect to.
type Endpoint struct {
	// Name is what the history records as the node ("a1"); Addr if empty.
	Name string
	// Addr is host:port of the broker's STOMP listener (or of a proxy in
	// front of it).
	Addr string
}

func (e Endpoint) node() string {
	if e.Name != "" {
		return e.Name
	}
	return e.Addr
}

// Failover is a client's list of brokers and how it moves between them,
// like ActiveMQ's failover: transport with randomize=false: each round
// tries the endpoints in order, the first that accepts wins; between
// rounds the client backs off, doubling from InitialBackoff to MaxBackoff.
type Failover struct {
	Endpoints []Endpoint
	// ConnectTimeout bounds the TCP connect and the STOMP CONNECT/CONNECTED
	// exchange with one endpoint. Default 2s.
	ConnectTimeout time.Duration
	// InitialBackoff and MaxBackoff shape the pause between rounds.
	// Defaults 50ms and 1s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRounds bounds the rounds of one reconnect; 0 means until the
	// context ends.
	MaxRounds int
	// Login and Passcode are sent on CONNECT when Login is set.
	Login, Passcode string
	// Versions are the STOMP versions offered on CONNECT; default 1.0,
	// 1.1 and 1.2 (the broker picks the highest it speaks).
	Versions []stomp.Version
}

// ErrNoEndpoints is returned by a client whose Failover lists no endpoint.
var ErrNoEndpoints = errors.New("workload: no broker endpoints")

// session is one live STOMP connection.
type session struct {
	conn *stomp.Conn
	nc   net.Conn
	ep   Endpoint
}

// abort drops the connection at once, without DISCONNECT: whatever is in
// flight gets an error.
func (s *session) abort() {
	if s != nil && s.nc != nil {
		_ = s.nc.Close()
	}
}

// close disconnects politely, bounded by d.
func (s *session) close(d time.Duration) {
	if s == nil {
		return
	}
	_ = s.nc.SetDeadline(time.Now().Add(d))
	_ = s.conn.Disconnect()
	_ = s.nc.Close()
}

// connect makes a connection by the failover rules. extra are STOMP
// connection options (heart-beats). It returns ctx's error when ctx ends
// first, or the last connect error after MaxRounds.
func (f *Failover) connect(ctx context.Context, extra ...func(*stomp.Conn) error) (*session, error) {
	if len(f.Endpoints) == 0 {
		return nil, ErrNoEndpoints
	}
	timeout := orDefault(f.ConnectTimeout, 2*time.Second)
	backoff := orDefault(f.InitialBackoff, 50*time.Millisecond)
	maxBackoff := orDefault(f.MaxBackoff, time.Second)
	var last error
	for round := 0; f.MaxRounds == 0 || round < f.MaxRounds; round++ {
		for _, ep := range f.Endpoints {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s, err := f.dial(ctx, ep, timeout, extra)
			if err == nil {
				return s, nil
			}
			last = err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff *= 2
		if backoff > maxBackoff {
			backoff = maxBackoff
		}
	}
	return nil, fmt.Errorf("workload: connect: %d rounds failed, last: %w", f.MaxRounds, last)
}

func (f *Failover) dial(ctx context.Context, ep Endpoint, timeout time.Duration, extra []func(*stomp.Conn) error) (*session, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	opts := []func(*stomp.Conn) error{
		stomp.ConnOpt.Logger(quietLogger{}),
		// No RcvReceiptTimeout(0) here: go-stomp's Send waits for a receipt
		// holding the connection lock, so an unbounded wait can deadlock
		// with its reader on a broken connection. Its default (30 s)
		// bounds every connection; producers pass their send timeout.
		stomp.ConnOpt.MsgSendTimeout(0),
	}
	if len(f.Versions) > 0 {
		opts = append(opts, stomp.ConnOpt.AcceptVersion(f.Versions...))
	}
	if f.Login != "" {
		opts = append(opts, stomp.ConnOpt.Login(f.Login, f.Passcode))
	}
	opts = append(opts, extra...)
	conn, err := stomp.Connect(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", ep.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &session{conn: conn, nc: nc, ep: ep}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// quietLogger drops go-stomp's log lines: the history says what happened.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...interface{})   {}
func (quietLogger) Infof(string, ...interface{})    {}
func (quietLogger) Warningf(string, ...interface{}) {}
func (quietLogger) Errorf(string, ...interface{})   {}
func (quietLogger) Debug(string)                    {}
func (quietLogger) Info(string)                     {}
func (quietLogger) Warning(string)                  {}
func (quietLogger) Error(string)                    {}
