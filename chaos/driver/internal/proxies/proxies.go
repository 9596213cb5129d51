// Package proxies is the set of in-process toxiproxy links a driver puts
// between clients, nodes and databases, and the driver.Links operations on
// it (cut and heal with nesting, toxics on both directions). The local and
// docker drivers share it, so a link fault means the same on both.
//
// Each link's listening socket is bound by Add and kept until Close,
// through cuts, heals and upstream changes: its port was drawn free at
// setup (chaos/freeport) and another process on the machine could take it
// if the link let it go (see chaos/internal/tcplink).
package proxies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/internal/tcplink"
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
	Port string
	// From, if valid, is the only source network the link passes
	// connections from (a container network): see tcplink.Listen.
	From netip.Prefix
	cuts int           // guarded by Set.mu
	tl   *tcplink.Link // bound from Add to Close
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
	tl, err := tcplink.Listen(s.tp, l.Name, l.Listen, upstream, l.From)
	if err != nil {
		return fmt.Errorf("%s: proxy %s on %s: %w", s.who, l.Name, l.Listen, err)
	}
	l.tl = tl
	s.mu.Lock()
	s.links = append(s.links, l)
	s.mu.Unlock()
	return nil
}

// SetUpstream points l at upstream and opens it unless it is cut. When
// the upstream changes (a node restarted on a new address) the link's
// live connections are closed, as a restart of the proxy would.
func (s *Set) SetUpstream(l *Link, upstream string) error {
	l.tl.SetUpstream(upstream)
	return nil
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
		l.tl.Close()
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
			l.tl.Block()
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
			l.tl.Unblock()
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
			if _, err := l.tl.Toxics().AddToxicJson(bytes.NewReader(js)); err != nil {
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
		if err := r.l.tl.Toxics().RemoveToxic(ctx, r.name); err != nil && first == nil {
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
