package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPortOutsideEphemeralRange: the port is below the kernel's ephemeral
// range, so no connect() or bind to port 0 can be given it before the
// caller binds it, and it binds.
func TestPortOutsideEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low-lowest < 1000 {
		t.Skipf("ephemeral range starts at %d: no room below it", low)
	}
	seen := make(map[int]bool)
	for range 50 {
		port, err := Port("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if port < lowest || port >= low {
			t.Fatalf("port %d, want in %d-%d (below the ephemeral range)", port, lowest, low-1)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("the free port %d does not bind: %v", port, err)
		}
		ln.Close()
	}
}

// TestPortSkipsBound: a port bound by someone else is never returned.
func TestPortSkipsBound(t *testing.T) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for range 20 {
		port, err := Port("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d does not bind: %v", port, err)
		}
		held = append(held, ln)
	}
}

// TestPortOn: a port for several addresses binds on each of them, and
// is marked given on each, so that Port on any of them never hands it
// out again.
func TestPortOn(t *testing.T) {
	ips := []string{"127.0.0.1", "127.0.0.2"}
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for range 20 {
		port, err := PortOn(ips...)
		if err != nil {
			t.Fatal(err)
		}
		for _, ip := range ips {
			addr := net.JoinHostPort(ip, strconv.Itoa(port))
			mu.Lock()
			g := given[addr]
			mu.Unlock()
			if !g {
				t.Fatalf("PortOn(%v) = %d, not marked given on %s", ips, port, ip)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("port %d does not bind on %s: %v", port, ip, err)
			}
			held = append(held, ln)
		}
	}
}
