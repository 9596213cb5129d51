// Package tcplink is a TCP proxy whose listening socket is bound once and
// kept until Close, through cuts and upstream changes, with toxiproxy's
// toxic chains on both directions. A port given up and bound again (as a
// toxiproxy Proxy does when stopped and started) can be taken by another
// process on the machine in between.
//
// The link accepts connections itself and hands them to the toxic chains
// of a toxiproxy Proxy (ToxicCollection.StartLink) that is never
// started. The driver links (chaos/driver/internal/proxies) and the
// database test proxies (chaos/dbserver/dbtest) share it.
package tcplink

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
)

// Link is one listening socket passing connections to an upstream.
type Link struct {
	tp     *toxiproxy.ApiServer
	proxy  *toxiproxy.Proxy // its toxic chains only: never started
	ln     net.Listener     // bound from Listen to Close
	served chan struct{}

	from netip.Prefix // if valid, the only sources it passes; set by Listen

	mu      sync.Mutex
	up      string // upstream address; "" not known yet
	blocked bool
	open    bool // passes new connections: not blocked, upstream known, not closed
	closed  bool
	gen     int                   // bumped when live connections are closed
	conns   map[net.Conn]struct{} // both ends of every live connection
	pruned  int                   // len(conns) after the last prune
}

// Listen binds addr (host:0 picks a free port: see Addr) and passes the
// connections it accepts to upstream through toxic chains named name,
// registered with tp; until upstream is known ("" now, SetUpstream later)
// they are reset. If from is valid, the link passes connections from
// addresses in it only (one container network: a proxy that peers on
// other networks must not use); others are reset as soon as accepted.
func Listen(tp *toxiproxy.ApiServer, name, addr, upstream string, from netip.Prefix) (*Link, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &Link{tp: tp, ln: ln, served: make(chan struct{}), conns: map[net.Conn]struct{}{},
		from: from, up: upstream, open: upstream != ""}
	l.proxy = toxiproxy.NewProxy(tp, name, ln.Addr().String(), "")
	go l.serve()
	return l, nil
}

// Addr is the address the link listens on.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Toxics is the link's toxic collection (both directions).
func (l *Link) Toxics() *toxiproxy.ToxicCollection { return l.proxy.Toxics }

// SetUpstream points l at upstream and opens it unless it is blocked.
// When the upstream changes (a node restarted on a new address) the
// link's live connections are closed, as a restart of the proxy would.
func (l *Link) SetUpstream(upstream string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up != upstream {
		l.dropLocked()
		l.up = upstream
	}
	l.open = !l.blocked && l.up != "" && !l.closed
}

// Block stops l passing connections: the live ones are closed, new ones
// are reset as soon as they are accepted; the port stays bound. Unblock
// undoes it.
func (l *Link) Block() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked, l.open = true, false
	l.dropLocked()
}

// Unblock lets l pass connections again.
func (l *Link) Unblock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked = false
	l.open = l.up != "" && !l.closed
}

// Close closes l's connections and releases its port.
func (l *Link) Close() {
	l.mu.Lock()
	l.closed, l.open = true, false
	l.dropLocked()
	l.mu.Unlock()
	l.ln.Close()
	<-l.served
}

// serve accepts l's connections until Close.
func (l *Link) serve() {
	defer close(l.served)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors: back off
			continue
		}
		go l.pass(c)
	}
}

// pass connects c to l's upstream through the toxic chains, or resets it
// if l is not open (blocked, closed, or upstream not known).
func (l *Link) pass(c net.Conn) {
	l.mu.Lock()
	up, open, gen := l.up, l.open, l.gen
	l.mu.Unlock()
	if l.from.IsValid() {
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || !l.from.Contains(ap.Addr().Unmap()) {
			open = false
		}
	}
	if !open {
		reset(c)
		return
	}
	u, err := net.Dial("tcp", up)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.open || l.gen != gen {
		// Blocked, or pointed elsewhere, while dialing.
		u.Close()
		reset(c)
		return
	}
	if len(l.conns) >= 2*l.pruned+64 {
		for x := range l.conns {
			if isClosed(x) {
				delete(l.conns, x)
			}
		}
		l.pruned = len(l.conns)
	}
	l.conns[c], l.conns[u] = struct{}{}, struct{}{}
	name := c.RemoteAddr().String()
	l.proxy.Toxics.StartLink(l.tp, name+"upstream", c, u, stream.Upstream)
	l.proxy.Toxics.StartLink(l.tp, name+"downstream", u, c, stream.Downstream)
}

// dropLocked closes every live connection through l; l.mu is held.
func (l *Link) dropLocked() {
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
	l.pruned = 0
	l.gen++
}

// reset closes c with a TCP reset rather than an orderly close.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// isClosed reports whether c was closed (by toxiproxy when its other end
// ended).
func isClosed(c net.Conn) bool {
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	return rc.Control(func(uintptr) {}) != nil
}
