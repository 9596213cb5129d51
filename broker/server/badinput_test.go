package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/stomp"
)

// bystander is a client that must be unaffected by another client's bad
// input: a receipted persistent message it sent before keeps flowing.
type bystander struct {
	t    *testing.T
	p, c *gostomp.Conn
	s    *gostomp.Subscription
	n    int
}

func newBystander(t *testing.T, addr string) *bystander {
	by := &bystander{t: t, p: dial(t, addr), c: dial(t, addr)}
	var err error
	if by.s, err = by.c.Subscribe("/queue/bystander", gostomp.AckClientIndividual); err != nil {
		t.Fatal(err)
	}
	by.check()
	return by
}

// check sends a message and receives it.
func (by *bystander) check() {
	by.t.Helper()
	by.n++
	body := fmt.Sprint("still-fine-", by.n)
	sendP(by.t, by.p, "/queue/bystander", body)
	m := recv(by.t, by.s)
	if string(m.Body) != body {
		by.t.Fatalf("bystander got %q, want %q", m.Body, body)
	}
	by.c.Ack(m)
}

func TestBadInput(t *testing.T) {
	lim := stomp.Limits{MaxFrame: 4096, MaxHeaders: 8, MaxHeaderLine: 256, MaxBody: 1024}
	b, addr := startBroker(t, nil, Options{Limits: lim})
	by := newBystander(t, addr)
	tests := []struct {
		name    string
		connect bool // send CONNECT first
		in      string
		message string // ERROR message header; "" for version
	}{
		{"frame before CONNECT", false, "SEND\ndestination:/queue/x\n\nx\x00", "not connected"},
		{"garbage before CONNECT", false, "GET / HTTP/1.1\r\n\r\n", "malformed frame"},
		{"header without colon", true, "SEND\ndestination /queue/x\n\n\x00", "malformed frame"},
		{"undefined escape", true, "SEND\ndestination:/queue/x\nk:\\t\n\n\x00", "malformed frame"},
		{"unknown command", true, "FROB\n\n\x00", "unknown command"},
		{"lowercase command", true, "send\ndestination:/queue/x\n\n\x00", "malformed frame"},
		{"oversize header line", true, "SEND\ndestination:/queue/" + strings.Repeat("x", 300) + "\n\n\x00", "header line too long"},
		{"too many headers", true, "SEND\n" + strings.Repeat("h:v\n", 9) + "\n\x00", "too many headers"},
		{"oversize content-length", true, "SEND\ndestination:/queue/x\ncontent-length:2000\n\n", "body too large"},
		{"oversize body", true, "SEND\ndestination:/queue/x\n\n" + strings.Repeat("b", 1100) + "\x00", "body too large"},
		{"invalid utf-8", true, "SEND\ndestination:/queue/\xc3\x28\n\n\x00", "invalid UTF-8 in header"},
		{"topic", true, "SEND\ndestination:/topic/x\n\n\x00", "unsupported destination"},
		{"no destination", true, "SEND\nreceipt:r1\n\n\x00", "missing header"},
		{"second CONNECT", true, "CONNECT\naccept-version:1.2\n\n\x00", "protocol error"},
		{"ack of unknown id", true, "ACK\nid:999\n\n\x00", "bad header"},
		{"commit without begin", true, "COMMIT\ntransaction:t\n\n\x00", "unknown transaction"},
		{"subscribe without id", true, "SUBSCRIBE\ndestination:/queue/x\n\n\x00", "missing header"},
		{"bad ack mode", true, "SUBSCRIBE\nid:1\ndestination:/queue/x\nack:sometimes\n\n\x00", "bad header"},
		{"bad prefetch", true, "SUBSCRIBE\nid:1\ndestination:/queue/x\nprefetch-count:-3\n\n\x00", "bad header"},
		{"bad heart-beat", false, "CONNECT\naccept-version:1.2\nheart-beat:fast\n\n\x00", "malformed frame"},
		{"version 1.0 only", false, "CONNECT\naccept-version:1.0\n\n\x00", ""},
		{"no accept-version", false, "CONNECT\n\n\x00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawDial(t, addr)
			if tt.connect {
				r.connect()
			}
			r.write(tt.in)
			f := r.expect("ERROR")
			if tt.message == "" {
				if f.Get("version") != "1.2" {
					t.Fatalf("version ERROR without version header: %v", f.Headers)
				}
			} else if got := f.Get("message"); got != tt.message {
				t.Fatalf("message %q, want %q (body %q)", got, tt.message, f.Body)
			}
			if tt.name == "no destination" && f.Get("receipt-id") != "r1" {
				t.Fatalf("ERROR without receipt-id: %v", f.Headers)
			}
			r.expectClosed()
			by.check()
		})
	}
	if d, _ := queueDepth(b, "/queue/x"); d != 0 {
		t.Fatalf("bad frames enqueued %d messages", d)
	}
}

// TestVanishMidFrame: a client that dies inside a frame loses only that
// frame; its complete, receipted frames before it are kept.
func TestVanishMidFrame(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	by := newBystander(t, addr)
	for _, torn := range []string{
		"SEND\ndestination:/queue/v\npersis",
		"SEND\ndestination:/queue/v\npersistent:true\ncontent-length:100\n\nonly-part",
		"SEND\ndestination:/queue/v\n\nno NUL yet",
	} {
		r := rawDial(t, addr)
		r.connect()
		r.write("SEND\ndestination:/queue/v\npersistent:true\nreceipt:ok\n\nwhole\x00")
		r.expect("RECEIPT")
		r.write(torn)
		r.nc.Close()
	}
	poll(t, "torn connections gone", func() bool { return b.Metrics().Connections == 2 })
	if d, _ := queueDepth(b, "/queue/v"); d != 3 {
		t.Fatalf("depth %d, want the 3 whole messages", d)
	}
	by.check()
}

func TestConnectTimeout(t *testing.T) {
	_, addr := startBroker(t, nil, Options{ConnectTimeout: 100 * time.Millisecond})
	by := newBystander(t, addr)
	// The broker's timer starts at accept, which cannot come before the
	// dial starts: take the time first, or a slow dial makes the close look
	// early.
	start := time.Now()
	r := rawDial(t, addr)
	if f := r.read(); f != nil && f.Command != "ERROR" {
		t.Fatalf("got %s", f.Command)
	}
	r.expectClosed()
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("closed before the connect timeout")
	}
	by.check()
}

// TestIdleConnections opens 2000 idle connections, half of them never
// sending CONNECT and half connected and silent, and checks that a normal
// client is served meanwhile and that they all go away cleanly.
func TestIdleConnections(t *testing.T) {
	const n = 2000
	b, addr := startBroker(t, nil, Options{ConnectTimeout: time.Minute})
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, nc)
		if i%2 == 1 {
			if _, err := nc.Write([]byte("CONNECT\naccept-version:1.2\nhost:idle\n\n\x00")); err != nil {
				t.Fatal(err)
			}
		}
	}
	poll(t, "idle clients connected", func() bool { return b.Metrics().Connections == n/2 })
	by := newBystander(t, addr)
	for range 20 {
		by.check()
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	poll(t, "idle clients gone", func() bool { return b.Metrics().Connections == 2 })
	by.check()
}

func TestErrorKinds(t *testing.T) {
	// The ERROR message header is derived from the parser's error kind.
	if got := kindMessage(stomp.ErrHeaderTooLong); got != "header line too long" {
		t.Fatal(got)
	}
	if !errors.Is(&stomp.ProtocolError{Kind: stomp.ErrMalformed}, stomp.ErrMalformed) {
		t.Fatal("kind not matched")
	}
}

// TestConnectTimeoutNotExtendedByHeartbeats: EOLs before CONNECT do not
// keep a connection open past the connect timeout.
func TestConnectTimeoutNotExtendedByHeartbeats(t *testing.T) {
	_, addr := startBroker(t, nil, Options{ConnectTimeout: 200 * time.Millisecond})
	r := rawDial(t, addr)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			f := r.read()
			if f == nil {
				return
			}
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	for {
		select {
		case <-closed:
			return
		case <-tick.C:
			r.nc.Write([]byte("\n"))
		case <-deadline:
			t.Fatal("heart-beats kept an unconnected client open")
		}
	}
}

// TestFrameTimeoutWhateverHeartbeats: a client that trickles one frame a
// byte at a time (each byte refreshing the heart-beat deadline) is dropped
// with ERROR "frame timeout" once FrameTimeout passed since the frame's
// first byte, while a client sending whole frames and heart-beats for
// longer than that stays.
func TestFrameTimeoutWhateverHeartbeats(t *testing.T) {
	b, addr := startBroker(t, nil, Options{FrameTimeout: 200 * time.Millisecond})
	frames := func(r *raw) <-chan *stomp.Frame {
		ch := make(chan *stomp.Frame, 100)
		r.nc.SetReadDeadline(time.Time{})
		go func() { // not r.read: it may not call t.Fatal
			defer close(ch)
			for {
				f, err := r.r.ReadFrame()
				if err != nil {
					return
				}
				if f != nil {
					ch <- f
				}
			}
		}()
		return ch
	}
	slow, good := rawDial(t, addr), rawDial(t, addr)
	slow.connect()
	good.connect()
	slowIn, goodIn := frames(slow), frames(good)
	slow.write("SEND\ndestination:/queue/slow\n\n")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	var errFrame *stomp.Frame
	for sent := 0; errFrame == nil; {
		select {
		case f, ok := <-slowIn:
			if !ok {
				t.Fatal("slow client closed without an ERROR")
			}
			if f.Command == stomp.ERROR {
				errFrame = f
			}
		case <-tick.C:
			slow.nc.Write([]byte("x"))
			good.write("\n")
			sent++
			good.write("SEND\ndestination:/queue/good\nreceipt:" + strconv.Itoa(sent) + "\n\nwhole\x00")
		case <-deadline:
			t.Fatal("a frame trickling in a byte at a time is never dropped")
		}
	}
	if errFrame.Get("message") != "frame timeout" {
		t.Fatalf("ERROR %v %q", errFrame.Headers, errFrame.Body)
	}
	poll(t, "the slow client gone", func() bool { return b.Metrics().Connections == 1 })
	good.write("SEND\ndestination:/queue/good\nreceipt:last\n\nwhole\x00")
	for f := range goodIn {
		if f.Command != stomp.RECEIPT {
			t.Fatalf("good client got %s %v %q", f.Command, f.Headers, f.Body)
		}
		if f.Get("receipt-id") == "last" {
			return
		}
	}
	t.Fatal("the client sending whole frames was dropped")
}
