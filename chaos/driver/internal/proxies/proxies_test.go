package proxies

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/listenfd/listenfdtest"
	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/freeport"
)

// echo starts a line echo server and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line on c and reads it back; the deadline only bounds
// a hang.
func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("echo: got " + line)
	}
	return nil
}

// dialTrip connects to addr and does one round trip.
func dialTrip(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c)
}

// clientLink is a set with one link, clients (site c) to node a1 (site
// a), on a free port.
func clientLink(t *testing.T, upstream string) (*Set, *Link) {
	t.Helper()
	listen, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := New("test", nil)
	l := &Link{Name: "clients->a1", FromSite: "c", ToSite: "a", ToNode: "a1", Listen: listen}
	if err := s.Add(l, upstream); err != nil {
		t.Fatal(err)
	}
	return s, l
}

// connected dials addr and does one round trip on the connection.
func connected(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := roundTrip(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// broken fails t unless err says the connection failed: closed or reset,
// not left hanging until the deadline.
func broken(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s passes", what)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s hung instead of failing: %v", what, err)
	}
	t.Logf("%s: %v", what, err)
}

func TestLinkKeepsPortAcrossCut(t *testing.T) {
	ctx := context.Background()
	up := echo(t)
	s, l := clientLink(t, "")
	listen := l.Listen

	// Bound from Add, before the upstream is known; connections fail.
	listenfdtest.Held(t, listen, "upstream not known")
	broken(t, dialTrip(listen), "a connection through a link with no upstream")

	if err := s.SetUpstream(l, up); err != nil {
		t.Fatal(err)
	}
	live := connected(t, listen)

	// Two cuts: one heal leaves the link cut.
	if err := s.Cut(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Cut(ctx, "a1", "*"); err != nil {
		t.Fatal(err)
	}
	broken(t, roundTrip(live), "a connection open before the cut")
	listenfdtest.Held(t, listen, "cut")
	broken(t, dialTrip(listen), "a new connection through a cut link")
	if err := s.Heal(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	listenfdtest.Held(t, listen, "cut twice, healed once")
	broken(t, dialTrip(listen), "a new connection through a link still cut once")

	if err := s.Heal(ctx, "a1", "*"); err != nil {
		t.Fatal(err)
	}
	listenfdtest.Held(t, listen, "healed")
	if err := dialTrip(listen); err != nil {
		t.Fatalf("after the heal: %v", err)
	}

	// A new upstream closes the connections to the old one.
	old := connected(t, listen)
	if err := s.SetUpstream(l, echo(t)); err != nil {
		t.Fatal(err)
	}
	broken(t, roundTrip(old), "a connection to the old upstream")
	if err := dialTrip(listen); err != nil {
		t.Fatalf("to the new upstream: %v", err)
	}

	s.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("after Close: bind %s: %v, want the port released", listen, err)
	}
	ln.Close()
}

// Toxics still reach the connections the link accepts itself.
func TestLinkToxics(t *testing.T) {
	ctx := context.Background()
	s, l := clientLink(t, echo(t))
	defer s.Close()
	listen := l.Listen
	live := connected(t, listen)
	id, err := s.AddToxic(ctx, "c", "a", driver.Toxic{Kind: driver.ToxicReset})
	if err != nil {
		t.Fatal(err)
	}
	broken(t, roundTrip(live), "a live connection under a reset toxic")
	broken(t, dialTrip(listen), "a new connection under a reset toxic")
	if err := s.RemoveToxic(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := dialTrip(listen); err != nil {
		t.Fatalf("toxic removed: %v", err)
	}
}

// TestFrom: a link with From passes connections from that network only;
// one from elsewhere is reset at once.
func TestFrom(t *testing.T) {
	up := echo(t)
	s := New("test", nil)
	defer s.Close()
	for _, tc := range []struct {
		from   string
		passes bool
	}{{"127.0.0.0/8", true}, {"10.0.0.0/8", false}} {
		listen, err := freeport.Addr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		l := &Link{Name: "site a->x", FromSite: "a", ToSite: "b", ToNode: "x", Listen: listen, From: netip.MustParsePrefix(tc.from)}
		if err := s.Add(l, up); err != nil {
			t.Fatal(err)
		}
		err = dialTrip(listen)
		if tc.passes && err != nil {
			t.Fatalf("from 127.0.0.1 through a link from %s: %v", tc.from, err)
		}
		if !tc.passes {
			broken(t, err, "from 127.0.0.1 through a link from "+tc.from)
		}
	}
}
