package main

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/stomp"
)

// rawConn is a hand-driven STOMP connection to the binary.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *stomp.Reader
}

func rawConnect(t *testing.T, addr, connect string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{t: t, nc: nc, r: stomp.NewReader(nc, stomp.Limits{})}
	if connect == "" {
		connect = "CONNECT\naccept-version:1.2\nhost:x\n\n\x00"
	}
	c.write(connect)
	return c
}

func (c *rawConn) write(s string) error {
	_, err := io.WriteString(c.nc, s)
	return err
}

// next returns the next frame (heart-beats skipped), or nil once the
// connection is closed.
func (c *rawConn) next(wait time.Duration) *stomp.Frame {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("no frame within %v", wait)
			}
			return nil
		}
		if f != nil {
			return f
		}
	}
}

func (c *rawConn) expect(command string) *stomp.Frame {
	c.t.Helper()
	f := c.next(20 * time.Second)
	if f == nil || f.Command != command {
		c.t.Fatalf("got %v, want %s", f, command)
	}
	return f
}

// TestFrameTimeoutBinary: refbroker drops a client trickling a frame one
// byte at a time after --frame-timeout, although each byte keeps the
// heart-beat deadline fresh.
func TestFrameTimeoutBinary(t *testing.T) {
	p := start(t, "--store", "memory", "--frame-timeout", "300ms")
	c := rawConnect(t, p.addr, "")
	c.expect(stomp.CONNECTED)
	c.write("SEND\ndestination:/queue/slow\n\n")
	got := make(chan *stomp.Frame, 1)
	c.nc.SetReadDeadline(time.Time{})
	go func() { // reads without a deadline; the writer below is the clock
		for {
			f, err := c.r.ReadFrame()
			if err != nil || f != nil {
				got <- f
				return
			}
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for stop := time.After(20 * time.Second); ; {
		select {
		case f := <-got:
			if f == nil || f.Command != stomp.ERROR || f.Get("message") != "frame timeout" {
				t.Fatalf("got %v, want ERROR frame timeout", f)
			}
			return
		case <-tick.C:
			c.write("x")
		case <-stop:
			t.Fatal("a client trickling one frame a byte at a time is still connected after 20s")
		}
	}
}

// TestLimitsBinary: --max-queues and --max-subscriptions refuse with an
// ERROR what would pass them.
func TestLimitsBinary(t *testing.T) {
	p := start(t, "--store", "memory", "--max-queues", "2", "--max-subscriptions", "2")
	c := rawConnect(t, p.addr, "")
	c.expect(stomp.CONNECTED)
	for _, q := range []string{"a", "b"} {
		c.write("SEND\ndestination:/queue/" + q + "\npersistent:true\nreceipt:" + q + "\n\nm\x00")
		c.expect(stomp.RECEIPT)
	}
	c.write("SEND\ndestination:/queue/c\npersistent:true\nreceipt:c\n\nm\x00")
	if f := c.expect(stomp.ERROR); f.Get("message") != "too many queues" {
		t.Fatalf("ERROR %v %q", f.Headers, f.Body)
	}
	s := rawConnect(t, p.addr, "")
	s.expect(stomp.CONNECTED)
	for _, id := range []string{"1", "2"} {
		s.write("SUBSCRIBE\nid:" + id + "\ndestination:/queue/a\nack:client\nreceipt:s" + id + "\n\n\x00")
	}
	for seen := 0; seen < 2; {
		if f := s.next(20 * time.Second); f == nil {
			t.Fatal("closed")
		} else if f.Command == stomp.RECEIPT {
			seen++
		}
	}
	s.write("SUBSCRIBE\nid:3\ndestination:/queue/a\n\n\x00")
	for {
		f := s.next(20 * time.Second)
		if f == nil {
			t.Fatal("closed without an ERROR")
		}
		if f.Command == stomp.ERROR {
			if f.Get("message") != "too many subscriptions" {
				t.Fatalf("ERROR %v %q", f.Headers, f.Body)
			}
			return
		}
	}
}

// TestLoginThrottleBinary: a flood of bad logins is refused unchecked
// past --max-login-failures, and not logged one line each.
func TestLoginThrottleBinary(t *testing.T) {
	p := start(t, "--store", "memory", "--login", "u", "--passcode", "p", "--max-login-failures", "3")
	last := ""
	for range 200 {
		c := rawConnect(t, p.addr, "CONNECT\naccept-version:1.2\nlogin:u\npasscode:guess\n\n\x00")
		f := c.next(20 * time.Second)
		if f == nil || f.Command != stomp.ERROR {
			t.Fatalf("got %v, want ERROR", f)
		}
		last = f.Get("message")
		c.nc.Close()
	}
	if last != "too many failed logins" {
		t.Fatalf("last ERROR %q, want too many failed logins", last)
	}
	c := rawConnect(t, p.addr, "CONNECT\naccept-version:1.2\nlogin:u\npasscode:p\n\n\x00")
	if f := c.next(20 * time.Second); f == nil || f.Get("message") != "too many failed logins" {
		t.Fatalf("good credentials from a throttled address: %v", f)
	}
	if n := strings.Count(p.stderr.String(), "\n"); n > 10 {
		t.Fatalf("%d log lines for 201 refused CONNECTs:\n%s", n, p.stderr)
	}
}

// TestMaxBodyRaisesFrameBinary: --max-body above the default frame limit
// raises that limit, so a body of that size is accepted.
func TestMaxBodyRaisesFrameBinary(t *testing.T) {
	p := start(t, "--store", "memory", "--max-body", "20MiB")
	c := rawConnect(t, p.addr, "")
	c.expect(stomp.CONNECTED)
	body := strings.Repeat("b", 17<<20)
	go c.write("SEND\ndestination:/queue/big\nreceipt:big\ncontent-length:" + strconv.Itoa(len(body)) + "\n\n" + body + "\x00")
	if f := c.expect(stomp.RECEIPT); f.Get("receipt-id") != "big" {
		t.Fatalf("receipt %v", f.Headers)
	}
}
