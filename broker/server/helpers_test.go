package server

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/lossbench/lossbench/broker/stomp"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

const waitFor = 10 * time.Second

// testLogf returns a Logf that writes to t until the test's cleanup ran.
func testLogf(t testing.TB) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
}

// startBroker recovers st into a new broker serving on a loopback port;
// cleanup shuts it down.
func startBroker(t testing.TB, st store.Store, opts Options) (*Broker, string) {
	t.Helper()
	if st == nil {
		st = memstore.New()
	}
	if opts.Logf == nil {
		opts.Logf = testLogf(t)
	}
	b := New(st, opts)
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return b, ln.Addr().String()
}

func dial(t testing.TB, addr string, opts ...func(*gostomp.Conn) error) *gostomp.Conn {
	t.Helper()
	opts = append([]func(*gostomp.Conn) error{gostomp.ConnOpt.Logger(quietLogger{})}, opts...)
	c, err := gostomp.Dial("tcp", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.MustDisconnect() })
	return c
}

type quietLogger struct{}

func (quietLogger) Debugf(string, ...any)   {}
func (quietLogger) Infof(string, ...any)    {}
func (quietLogger) Warningf(string, ...any) {}
func (quietLogger) Errorf(string, ...any)   {}
func (quietLogger) Debug(string)            {}
func (quietLogger) Info(string)             {}
func (quietLogger) Warning(string)          {}
func (quietLogger) Error(string)            {}

// sendP sends a persistent message and waits for its receipt.
func sendP(t testing.TB, c *gostomp.Conn, dest, body string, hdr ...string) {
	t.Helper()
	opts := []func(*frame.Frame) error{gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")}
	for i := 0; i+1 < len(hdr); i += 2 {
		opts = append(opts, gostomp.SendOpt.Header(hdr[i], hdr[i+1]))
	}
	if err := c.Send(dest, "text/plain", []byte(body), opts...); err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
}

func recv(t testing.TB, s *gostomp.Subscription) *gostomp.Message {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		if m.Err != nil {
			t.Fatalf("subscription error: %v", m.Err)
		}
		return m
	case <-time.After(waitFor):
		t.Fatal("no message within", waitFor)
	}
	return nil
}

// recvBodies receives n messages and returns their bodies in order.
func recvBodies(t testing.TB, s *gostomp.Subscription, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, string(recv(t, s).Body))
	}
	return out
}

// poll waits until cond holds.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func queueDepth(b *Broker, name string) (depth, inflight int) {
	for _, q := range b.Status().Queues {
		if q.Name == name {
			return q.Depth, q.Inflight
		}
	}
	return 0, 0
}

// raw is a hand-driven STOMP connection for bad-input tests.
type raw struct {
	t  testing.TB
	nc net.Conn
	r  *stomp.Reader
}

func rawDial(t testing.TB, addr string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc, r: stomp.NewReader(nc, stomp.Limits{})}
}

func (r *raw) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.nc, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, skipping heart-beats, or nil at EOF.
func (r *raw) read() *stomp.Frame {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(waitFor))
	for {
		f, err := r.r.ReadFrame()
		if err != nil {
			if err == io.EOF || isReset(err) {
				return nil
			}
			r.t.Fatalf("read: %v", err)
		}
		if f != nil {
			return f
		}
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

func (r *raw) expect(command string) *stomp.Frame {
	r.t.Helper()
	f := r.read()
	if f == nil {
		r.t.Fatalf("connection closed, want %s", command)
	}
	if f.Command != command {
		r.t.Fatalf("got %s %v %q, want %s", f.Command, f.Headers, f.Body, command)
	}
	return f
}

func (r *raw) expectClosed() {
	r.t.Helper()
	if f := r.read(); f != nil {
		r.t.Fatalf("got %s %v %q, want the connection closed", f.Command, f.Headers, f.Body)
	}
}

func (r *raw) connect() {
	r.t.Helper()
	r.write("CONNECT\naccept-version:1.2\nhost:test\n\n\x00")
	r.expect(stomp.CONNECTED)
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func consumers(b *Broker, name string) int {
	for _, q := range b.Status().Queues {
		if q.Name == name {
			return q.Consumers
		}
	}
	return 0
}
