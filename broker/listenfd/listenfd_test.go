//go:build linux

package listenfd

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/listenfd/listenfdtest"
)

// hangGuard bounds a read that must fail at once, so that a regression
// fails the test instead of hanging it; it is not a timing assertion.
const hangGuard = time.Minute

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in     string
		fd     int
		ok, er bool
	}{
		{"127.0.0.1:61613", 0, false, false},
		{"fd:3", 3, true, false},
		{"fd:12", 12, true, false},
		{"fd:2", 0, true, true},
		{"fd:x", 0, true, true},
		{"fd:", 0, true, true},
	} {
		fd, ok, err := Parse(c.in)
		if fd != c.fd || ok != c.ok || (err != nil) != c.er {
			t.Errorf("Parse(%q) = %d, %v, %v; want %d, %v, error %v", c.in, fd, ok, err, c.fd, c.ok, c.er)
		}
	}
}

// inherit is what a child gets: another descriptor of the parent's
// socket, opened as a Socket.
func inherit(t *testing.T, parent *os.File) *Socket {
	t.Helper()
	fd, err := syscall.Dup(int(parent.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.f.Close() })
	return s
}

func bind(t *testing.T) (*os.File, string) {
	t.Helper()
	f, addr, err := Bind("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, addr
}

// roundTrip connects, has the server write a byte and close first (so
// the server's side of it stays in TIME_WAIT on the port).
func roundTrip(t *testing.T, ln net.Listener) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte{1})
	sc.Close()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
}

// TestStandbyRefusesThenServes: bound and not listening, the socket
// refuses clients and holds its port; listening, it serves; its listener
// closed, it refuses again, still holds the port, and listens again in
// spite of the connections it left in TIME_WAIT.
func TestStandbyRefusesThenServes(t *testing.T) {
	parent, addr := bind(t)
	listenfdtest.Refused(t, addr, "bound, before any child")
	listenfdtest.Held(t, addr, "bound, before any child")
	s := inherit(t, parent)
	if s.Addr().String() != addr {
		t.Fatalf("inherited socket on %s, want %s", s.Addr(), addr)
	}
	listenfdtest.Refused(t, addr, "inherited by a standby")
	for round := range 3 {
		ln, err := s.Listen()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		roundTrip(t, ln)
		listenfdtest.Held(t, addr, "listening")
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		listenfdtest.Refused(t, addr, "listener closed")
		listenfdtest.Held(t, addr, "listener closed")
	}
}

// TestStopAfterDeath: a child that dies while listening leaves the
// socket listening through the parent's copy, so a client connects into
// a backlog nobody accepts (the hang this package's Stop exists for);
// Stop resets that client and refuses the next ones, and a new child
// listens on the same socket.
func TestStopAfterDeath(t *testing.T) {
	parent, addr := bind(t)
	child := inherit(t, parent)
	ln, err := child.Listen()
	if err != nil {
		t.Fatal(err)
	}
	// The child dies: the kernel closes its descriptors, not its
	// listener's Close.
	ln.(*listener).Listener.Close()
	child.f.Close()

	waiting, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("without Stop the dead child's socket still listens through the parent, want the dial to succeed: %v", err)
	}
	defer waiting.Close()
	if err := Stop(parent); err != nil {
		t.Fatal(err)
	}
	waiting.SetReadDeadline(time.Now().Add(hangGuard))
	if _, err := waiting.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client in the dead child's backlog: read %v, want connection reset", err)
	}
	listenfdtest.Refused(t, addr, "stopped after the child's death")
	listenfdtest.Held(t, addr, "stopped after the child's death")
	if err := Stop(parent); err != nil {
		t.Fatalf("Stop on a socket that does not listen: %v", err)
	}

	next := inherit(t, parent)
	ln, err = next.Listen()
	if err != nil {
		t.Fatalf("a restarted child listens on the same socket: %v", err)
	}
	defer ln.Close()
	roundTrip(t, ln)
}

func TestOpenRefusesOtherDescriptors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Open(int(r.Fd())); err == nil {
		t.Fatal("Open of a pipe succeeded")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if _, err := Open(fd); err == nil {
		t.Fatal("Open of an unbound socket succeeded")
	}
	if _, err := Open(1 << 20); err == nil {
		t.Fatal("Open of a closed descriptor succeeded")
	}
}
