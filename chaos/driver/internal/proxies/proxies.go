// Package proxies is the set of in-process toxiproxy links a driver puts
// between clients, nodes and databases, and the driver.Links operations on
// it (cut and heal with nesting, toxics on both directions). The local and
// docker drivers share it, so a link fault means the same on both.
//
// Each link's listening socket is bound by Add and kept until Close,
// through cuts, heals and upstream changes: its port was drawn free at
// setup (chaos/freeport) and another process on the machine could take it
// if the link let it go. So the link accepts connections itself and hands
// them to toxiproxy's toxic chains (ToxicCollection.StartLink); the
// toxiproxy Proxy is never started, since starting and stopping it binds
// and releases the port.
package proxies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Link is one proxied connection path: from clients (FromNode "") or a
// node, to a node or a database. Its proxy listens on Listen.
type Link struct {
	Name               string // "clients->a1", "a1->b1"
	FromSite, FromNode string
	ToSite, ToNode     string
	Listen             string
	// Port is which of the target node's ports the link reaches: "" its
	// STOMP listener, "repl" its replication listener.
	Port  string
	proxy *toxiproxy.Proxy // its toxic chains only: never started
	cuts  int              // guarded by Set.mu

	ln     net.Listener // bound from Add to Close
	served chan struct{}
	mu     sync.Mutex
	up     string // upstream address; "" not known yet
	open   bool   // passes new connections: not cut, upstream known
	closed bool
	gen    int                   // bumped when live connections are closed
	conns  map[net.Conn]struct{} // both ends of every live connection
	pruned int                   // len(conns) after the last prune
}

type toxicRef struct {
	l    *Link
	name string
}

// Set is a driver's links. Its methods are safe for concurrent use.
type Set struct {
	who string // error prefix: the driver's name
	log func(format string, args ...any)
	tp  *toxiproxy.ApiServer

	mu     sync.Mutex
	links  []*Link
	toxics map[string][]toxicRef
	nextID int
}

// New returns an empty set; who prefixes its errors, log gets one line
// per cut, heal and toxic.
func New(who string, log func(format string, args ...any)) *Set {
	// toxiproxy logs through zerolog, some toxics through its global
	// logger; the harness reports what matters itself.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	if log == nil {
		log = func(string, ...any) {}
	}
	return &Set{who: who, log: log, toxics: map[string][]toxicRef{},
		tp: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
}

// Add binds l's listener on l.Listen, which it keeps until Close, and
// passes connections to upstream, unless upstream is "" (not known yet:
// SetUpstream opens the link; until then connections are reset).
func (s *Set) Add(l *Link, upstream string) error {
	ln, err := net.Listen("tcp", l.Listen)
	if err != nil {
		return fmt.Errorf("%s: proxy %s on %s: %w", s.who, l.Name, l.Listen, err)
	}
	l.proxy = toxiproxy.NewProxy(s.tp, l.Name, l.Listen, "")
	l.ln, l.served, l.conns = ln, make(chan struct{}), map[net.Conn]struct{}{}
	l.up, l.open = upstream, upstream != ""
	go l.serve(s.tp)
	s.mu.Lock()
	s.links = append(s.links, l)
	s.mu.Unlock()
	return nil
}

// SetUpstream points l at upstream and opens it unless it is cut. When
// the upstream changes (a node restarted on a new address) the link's
// live connections are closed, as a restart of the proxy would.
func (s *Set) SetUpstream(l *Link, upstream string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up != upstream {
		l.dropLocked()
		l.up = upstream
	}
	l.open = l.cuts == 0 && l.up != "" && !l.closed
	return nil
}

// serve accepts l's connections until Close.
func (l *Link) serve(tp *toxiproxy.ApiServer) {
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
		go l.pass(tp, c)
	}
}

// pass connects c to l's upstream through the toxic chains, or resets it
// if l is not open (cut, closed, or upstream not known).
func (l *Link) pass(tp *toxiproxy.ApiServer, c net.Conn) {
	l.mu.Lock()
	up, open, gen := l.up, l.open, l.gen
	l.mu.Unlock()
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
		// Cut, or pointed elsewhere, while dialing.
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
	l.proxy.Toxics.StartLink(tp, name+"upstream", c, u, stream.Upstream)
	l.proxy.Toxics.StartLink(tp, name+"downstream", u, c, stream.Downstream)
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

// block stops l passing connections and closes the live ones; reopen
// undoes it.
func (l *Link) block() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open = false
	l.dropLocked()
}

func (l *Link) reopen() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open = l.up != "" && !l.closed
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

// Links returns the links in the order they were added.
func (s *Set) Links() []*Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Link(nil), s.links...)
}

// ClientListen is the address of the clients' link to node, if they
// have one.
func (s *Set) ClientListen(node string) (string, bool) {
	for _, l := range s.Links() {
		if l.FromNode == "" && l.ToNode == node {
			return l.Listen, true
		}
	}
	return "", false
}

// Linked reports whether sites a and b of topo may talk: the same site,
// or a link between them.
func Linked(topo scenario.Topology, a, b string) bool {
	if a == b {
		return true
	}
	for _, l := range topo.Links {
		if l.Joins(a, b) {
			return true
		}
	}
	return false
}

// Close closes every link's connections and releases its port.
func (s *Set) Close() {
	for _, l := range s.Links() {
		l.mu.Lock()
		l.closed, l.open = true, false
		l.dropLocked()
		l.mu.Unlock()
		l.ln.Close()
		<-l.served
	}
}

// matches reports whether end (a site or node name, or driver.Any) is one
// side of l: from reports the side.
func (l *Link) matches(end string, from bool) bool {
	if end == driver.Any {
		return true
	}
	if from {
		return end == l.FromSite || (l.FromNode != "" && end == l.FromNode)
	}
	return end == l.ToSite || end == l.ToNode
}

// between returns the links joining a and b, in either direction.
func (s *Set) between(a, b string) ([]*Link, error) {
	var out []*Link
	for _, l := range s.Links() {
		if (l.matches(a, true) && l.matches(b, false)) || (l.matches(b, true) && l.matches(a, false)) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no link between %q and %q: %w", s.who, a, b, driver.ErrUnknown)
	}
	return out, nil
}

// Cut disables the links between a and b: every connection through them
// is closed and new ones are reset as soon as they are accepted. The
// links keep their listening ports. Cuts nest.
func (s *Set) Cut(ctx context.Context, a, b string) error {
	ls, err := s.between(a, b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range ls {
		l.cuts++
		if l.cuts == 1 {
			l.block()
		}
	}
	s.log("cut %s <-> %s (%d links)", a, b, len(ls))
	return nil
}

// Heal undoes one Cut(a, b): links no other cut holds open again.
func (s *Set) Heal(ctx context.Context, a, b string) error {
	ls, err := s.between(a, b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range ls {
		if l.cuts == 0 {
			continue
		}
		l.cuts--
		if l.cuts == 0 {
			l.reopen()
		}
	}
	s.log("heal %s <-> %s", a, b)
	return nil
}

// toxicSpec is a toxic as toxiproxy's JSON API takes it; the only way the
// library adds a toxic. Toxicity is always 1: the toxic applies to every
// connection, always, while installed.
type toxicSpec struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

func (s *Set) toxicTypeAttrs(t driver.Toxic) (string, map[string]any, error) {
	switch t.Kind {
	case driver.ToxicLatency:
		return "latency", map[string]any{"latency": t.Latency.Milliseconds(), "jitter": t.Jitter.Milliseconds()}, nil
	case driver.ToxicBandwidth:
		if t.KBPerSec <= 0 {
			return "", nil, fmt.Errorf("%s: bandwidth toxic needs KBPerSec > 0", s.who)
		}
		return "bandwidth", map[string]any{"rate": t.KBPerSec}, nil
	case driver.ToxicReset:
		return "reset_peer", map[string]any{"timeout": 0}, nil
	case driver.ToxicBlackhole:
		return "timeout", map[string]any{"timeout": 0}, nil
	}
	return "", nil, fmt.Errorf("%s: toxic %q: %w", s.who, t.Kind, driver.ErrUnsupported)
}

// AddToxic installs t on every link between a and b, both directions.
// Latency jitter is drawn by toxiproxy from an unseeded source: the delay
// of each chunk does not replay, the toxic's window does.
func (s *Set) AddToxic(ctx context.Context, a, b string, t driver.Toxic) (string, error) {
	typ, attrs, err := s.toxicTypeAttrs(t)
	if err != nil {
		return "", err
	}
	ls, err := s.between(a, b)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := "lb" + strconv.Itoa(s.nextID)
	var refs []toxicRef
	for _, l := range ls {
		for _, stream := range []string{"upstream", "downstream"} {
			spec := toxicSpec{Name: id + "-" + stream, Type: typ, Stream: stream, Toxicity: 1, Attributes: attrs}
			js, err := json.Marshal(spec)
			if err != nil {
				return "", err
			}
			if _, err := l.proxy.Toxics.AddToxicJson(bytes.NewReader(js)); err != nil {
				s.removeRefs(ctx, refs)
				return "", fmt.Errorf("%s: toxic %s on %s: %w", s.who, typ, l.Name, err)
			}
			refs = append(refs, toxicRef{l: l, name: spec.Name})
		}
	}
	s.toxics[id] = refs
	s.log("toxic %s %s on %s <-> %s (%d links)", id, typ, a, b, len(ls))
	return id, nil
}

func (s *Set) removeRefs(ctx context.Context, refs []toxicRef) error {
	var first error
	for _, r := range refs {
		if err := r.l.proxy.Toxics.RemoveToxic(ctx, r.name); err != nil && first == nil {
			first = fmt.Errorf("%s: remove toxic %s from %s: %w", s.who, r.name, r.l.Name, err)
		}
	}
	return first
}

// RemoveToxic removes the toxic AddToxic installed as id.
func (s *Set) RemoveToxic(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, ok := s.toxics[id]
	if !ok {
		return fmt.Errorf("%s: toxic %q: %w", s.who, id, driver.ErrUnknown)
	}
	delete(s.toxics, id)
	s.log("toxic %s removed", id)
	return s.removeRefs(ctx, refs)
}
