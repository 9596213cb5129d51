package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/lossbench/lossbench/chaos/driver"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// link is one proxied connection path: clients (fromNode "") or a node,
// to a node. Its proxy listens on the target node's address, so clients
// see each site's addresses.
type link struct {
	name               string // "clients->a1", "a1->b1"
	fromSite, fromNode string
	toSite, toNode     string
	listen             string
	proxy              *toxiproxy.Proxy
	cuts               int // guarded by Driver.mu
}

type toxicRef struct {
	l    *link
	name string
}

func (d *Driver) clientsEnd() string {
	if d.opt.ClientSite != "" {
		return d.opt.ClientSite
	}
	return ClientsEnd
}

// linked reports whether sites a and b may talk: the same site, or a link
// between them in the topology.
func (d *Driver) linked(a, b string) bool {
	if a == b {
		return true
	}
	for _, l := range d.topo.Links {
		if l.Joins(a, b) {
			return true
		}
	}
	return false
}

// layoutLinks makes a proxy from the clients to every node their site
// reaches (every node when the clients are outside all sites), and from
// every node to every other node its site reaches.
func (d *Driver) layoutLinks() error {
	for _, name := range d.order {
		to := d.nodes[name]
		if d.opt.ClientSite == "" || d.linked(d.opt.ClientSite, to.spec.Site) {
			if err := d.addLink(d.clientsEnd(), "", to); err != nil {
				return err
			}
		}
		for _, fromName := range d.order {
			from := d.nodes[fromName]
			if from == to || !d.linked(from.spec.Site, to.spec.Site) {
				continue
			}
			if err := d.addLink(from.spec.Site, from.spec.Name, to); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Driver) addLink(fromSite, fromNode string, to *node) error {
	listen, err := osutil.FreeAddr(to.ip)
	if err != nil {
		return err
	}
	from := fromNode
	if from == "" {
		from = fromSite
	}
	l := &link{name: from + "->" + to.spec.Name, fromSite: fromSite, fromNode: fromNode,
		toSite: to.spec.Site, toNode: to.spec.Name, listen: listen}
	l.proxy = toxiproxy.NewProxy(d.tp, l.name, listen, to.listen)
	if err := l.proxy.Start(); err != nil {
		return fmt.Errorf("local: proxy %s on %s: %w", l.name, listen, err)
	}
	d.links = append(d.links, l)
	return nil
}

// matches reports whether end (a site or node name, or driver.Any) is one
// side of l: from reports the side.
func (l *link) matches(end string, from bool) bool {
	if end == driver.Any {
		return true
	}
	if from {
		return end == l.fromSite || (l.fromNode != "" && end == l.fromNode)
	}
	return end == l.toSite || end == l.toNode
}

// between returns the links joining a and b, in either direction.
func (d *Driver) between(a, b string) ([]*link, error) {
	var out []*link
	for _, l := range d.links {
		if (l.matches(a, true) && l.matches(b, false)) || (l.matches(b, true) && l.matches(a, false)) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("local: no link between %q and %q: %w", a, b, driver.ErrUnknown)
	}
	return out, nil
}

// Cut disables the proxies between a and b: their listeners close and
// every connection through them is closed.
func (d *Driver) Cut(ctx context.Context, a, b string) error {
	ls, err := d.between(a, b)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range ls {
		l.cuts++
		if l.cuts == 1 {
			l.proxy.Stop()
		}
	}
	d.opt.Log("cut %s <-> %s (%d links)", a, b, len(ls))
	return nil
}

// Heal undoes one Cut(a, b): links no other cut holds open again.
func (d *Driver) Heal(ctx context.Context, a, b string) error {
	ls, err := d.between(a, b)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if l.cuts == 0 {
			continue
		}
		l.cuts--
		if l.cuts == 0 {
			if err := l.proxy.Start(); err != nil {
				errs = append(errs, fmt.Errorf("local: heal %s: %w", l.name, err))
			}
		}
	}
	d.opt.Log("heal %s <-> %s", a, b)
	if len(errs) > 0 {
		return errs[0]
	}
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

func toxicTypeAttrs(t driver.Toxic) (string, map[string]any, error) {
	switch t.Kind {
	case driver.ToxicLatency:
		return "latency", map[string]any{"latency": t.Latency.Milliseconds(), "jitter": t.Jitter.Milliseconds()}, nil
	case driver.ToxicBandwidth:
		if t.KBPerSec <= 0 {
			return "", nil, fmt.Errorf("local: bandwidth toxic needs KBPerSec > 0")
		}
		return "bandwidth", map[string]any{"rate": t.KBPerSec}, nil
	case driver.ToxicReset:
		return "reset_peer", map[string]any{"timeout": 0}, nil
	case driver.ToxicBlackhole:
		return "timeout", map[string]any{"timeout": 0}, nil
	}
	return "", nil, fmt.Errorf("local: toxic %q: %w", t.Kind, driver.ErrUnsupported)
}

// AddToxic installs t on every link between a and b, both directions.
// Latency jitter is drawn by toxiproxy from an unseeded source: the delay
// of each chunk does not replay, the toxic's window does.
func (d *Driver) AddToxic(ctx context.Context, a, b string, t driver.Toxic) (string, error) {
	typ, attrs, err := toxicTypeAttrs(t)
	if err != nil {
		return "", err
	}
	ls, err := d.between(a, b)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	id := "lb" + strconv.Itoa(d.nextID)
	var refs []toxicRef
	for _, l := range ls {
		for _, stream := range []string{"upstream", "downstream"} {
			spec := toxicSpec{Name: id + "-" + stream, Type: typ, Stream: stream, Toxicity: 1, Attributes: attrs}
			js, err := json.Marshal(spec)
			if err != nil {
				return "", err
			}
			if _, err := l.proxy.Toxics.AddToxicJson(bytes.NewReader(js)); err != nil {
				d.removeRefs(ctx, refs)
				return "", fmt.Errorf("local: toxic %s on %s: %w", typ, l.name, err)
			}
			refs = append(refs, toxicRef{l: l, name: spec.Name})
		}
	}
	d.toxics[id] = refs
	d.opt.Log("toxic %s %s on %s <-> %s (%d links)", id, typ, a, b, len(ls))
	return id, nil
}

func (d *Driver) removeRefs(ctx context.Context, refs []toxicRef) error {
	var first error
	for _, r := range refs {
		if err := r.l.proxy.Toxics.RemoveToxic(ctx, r.name); err != nil && first == nil {
			first = fmt.Errorf("local: remove toxic %s from %s: %w", r.name, r.l.name, err)
		}
	}
	return first
}

// RemoveToxic removes the toxic AddToxic installed as id.
func (d *Driver) RemoveToxic(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	refs, ok := d.toxics[id]
	if !ok {
		return fmt.Errorf("local: toxic %q: %w", id, driver.ErrUnknown)
	}
	delete(d.toxics, id)
	d.opt.Log("toxic %s removed", id)
	return d.removeRefs(ctx, refs)
}
