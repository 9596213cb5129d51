package workload

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Endpoint is one broker address a client may connect to.
type Endpoint struct {
	// Name is what the history records as the node ("a1"); Addr if empty.
	Name string
	// Addr is host:port of the broker's listener for the protocol (or of
	// a proxy in front of it).
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
	// Protocol is how the client speaks to the brokers; default STOMP{}.
	Protocol Protocol
	// ConnectTimeout bounds the TCP connect and the protocol's handshake
	// with one endpoint. Default 2s.
	ConnectTimeout time.Duration
	// InitialBackoff and MaxBackoff shape the pause between rounds.
	// Defaults 50ms and 1s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRounds bounds the rounds of one reconnect; 0 means until the
	// context ends.
	MaxRounds int
	// Login and Passcode are sent on connect when Login is set.
	Login, Passcode string
}

// ErrNoEndpoints is returned by a client whose Failover lists no endpoint.
var ErrNoEndpoints = errors.New("workload: no broker endpoints")

// protocol is f's protocol, STOMP by default.
func (f *Failover) protocol() Protocol {
	if f.Protocol == nil {
		return STOMP{}
	}
	return f.Protocol
}

// session is one live connection and the endpoint it reached.
type session struct {
	Conn
	ep Endpoint
}

// close disconnects politely, bounded by d; nil does nothing.
func (s *session) close(d time.Duration) {
	if s != nil {
		s.Close(d)
	}
}

// abort drops the connection; nil does nothing.
func (s *session) abort() {
	if s != nil {
		s.Abort()
	}
}

// connect makes a connection by the failover rules, with o's settings
// (its Timeout is the ConnectTimeout). It returns ctx's error when ctx
// ends first, or the last connect error after MaxRounds.
func (f *Failover) connect(ctx context.Context, o DialOptions) (*session, error) {
	if len(f.Endpoints) == 0 {
		return nil, ErrNoEndpoints
	}
	o.Timeout = orDefault(f.ConnectTimeout, 2*time.Second)
	o.Login, o.Passcode = f.Login, f.Passcode
	backoff := orDefault(f.InitialBackoff, 50*time.Millisecond)
	maxBackoff := orDefault(f.MaxBackoff, time.Second)
	proto := f.protocol()
	var last error
	for round := 0; f.MaxRounds == 0 || round < f.MaxRounds; round++ {
		for _, ep := range f.Endpoints {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			c, err := proto.Dial(ctx, ep, o)
			if err == nil {
				return &session{Conn: c, ep: ep}, nil
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

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
