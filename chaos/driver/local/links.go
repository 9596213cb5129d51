package local

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// A link's proxy listens on the target node's address, so clients see
// each site's addresses.

func (d *Driver) clientsEnd() string {
	if d.opt.ClientSite != "" {
		return d.opt.ClientSite
	}
	return ClientsEnd
}

// linked reports whether sites a and b may talk.
func (d *Driver) linked(a, b string) bool { return proxies.Linked(d.topo, a, b) }

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
			// Replication ({repl.NAME}) takes the same path between the
			// sites, so that link faults apply to it.
			if err := d.addReplLink(from, to); err != nil {
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
	return d.px.Add(&proxies.Link{Name: from + "->" + to.spec.Name, FromSite: fromSite, FromNode: fromNode,
		ToSite: to.spec.Site, ToNode: to.spec.Name, Listen: listen}, to.listen)
}

// addReplLink proxies from's connections to to's replication address.
func (d *Driver) addReplLink(from, to *node) error {
	listen, err := osutil.FreeAddr(to.ip)
	if err != nil {
		return err
	}
	return d.px.Add(&proxies.Link{Name: from.spec.Name + "->" + to.spec.Name + "/repl", FromSite: from.spec.Site, FromNode: from.spec.Name,
		ToSite: to.spec.Site, ToNode: to.spec.Name, Listen: listen, Port: "repl"}, to.repl)
}

// Cut disables the proxies between a and b: their listeners close and
// every connection through them is closed.
func (d *Driver) Cut(ctx context.Context, a, b string) error { return d.px.Cut(ctx, a, b) }

// Heal undoes one Cut(a, b): links no other cut holds open again.
func (d *Driver) Heal(ctx context.Context, a, b string) error { return d.px.Heal(ctx, a, b) }

// AddToxic installs t on every link between a and b, both directions.
func (d *Driver) AddToxic(ctx context.Context, a, b string, t driver.Toxic) (string, error) {
	return d.px.AddToxic(ctx, a, b, t)
}

// RemoveToxic removes the toxic AddToxic installed as id.
func (d *Driver) RemoveToxic(ctx context.Context, id string) error { return d.px.RemoveToxic(ctx, id) }
