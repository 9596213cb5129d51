// Package listenfdtest holds the checks the tests of inherited sockets
// (broker/listenfd) make on an address: a client is refused, and no other
// process can bind it.
package listenfdtest

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// Refused checks that a client of addr gets a connection error at once
// (connection refused): no listener, not a backlog nobody accepts. when
// says at which step, for the failure.
func Refused(t testing.TB, addr, when string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("%s: a connection to %s was accepted, want it refused", when, addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s: dial %s: %v, want connection refused", when, addr, err)
	}
}

// Held checks that no other process can bind addr, even with
// SO_REUSEADDR (Go's net.Listen sets it).
func Held(t testing.TB, addr, when string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		t.Fatalf("%s: another listener bound %s", when, addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("%s: listen %s: %v, want address in use", when, addr, err)
	}
}
