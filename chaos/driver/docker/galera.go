package docker

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/chaos/freeport"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// GaleraStart bounds the start of one Galera node's container until it
// is synced with the cluster: a joiner receives the whole data folder
// (rsync state transfer), which takes minutes on a loaded machine (3m40s
// seen here at a load average of 44 on 2 cores, most of it the bash
// scripts of the transfer forking their tools).
const GaleraStart = 10 * time.Minute

// galera is a MariaDB Galera cluster (a mariadb database with replicas)
// in containers, one a server, each on its site's network, from the
// MariaDB image made here (which carries galera-4 and the rsync state
// transfer). Every server takes writes and a COMMIT returns once every
// node has certified it; there is no primary, so no HA manager: a broker
// is given every node, through its own proxy to each, and connects to
// the first that is ready (sqlstore's failover DSN), its own site's
// first, as on the local driver.
//
// Unlike the local driver, the nodes' own traffic (group communication,
// incremental and full state transfers) goes through the link proxies,
// so a cut between two sites cuts the cluster too. Galera connects to
// the address each member advertises, one for all its peers; here that
// address is a name and ports: a node advertises its server's name and
// three ports (group, IST, SST) it listens on in its container, and in
// the container of every node of another site that name stands (an
// /etc/hosts entry) for that site network's gateway, where a proxy per
// port and site listens on the same port and passes to the node's
// container. Nodes of the same site reach each other directly (the
// engine's DNS has every server's name on its site network).
//
// Galera records a peer's address as the one it reached it at (here a
// gateway and a port) and passes it on to the other members. Every
// gateway is an address of the host, which any container reaches, so a
// node would use another site's proxies, or reach itself through the
// proxy to it and abort ("a node with the same UUID already exists"):
// each proxy passes connections from its own site's network only
// (proxies.Link.From).
type galera struct {
	d       *Driver
	spec    scenario.Database
	members []*database // in spec.Servers() order
	ports   []galeraPorts
	// in[m] are the proxies to member m, from each other site.
	in [][]galeraLink
	// boot: members[0]'s container was made to bootstrap the cluster
	// (--wsrep-new-cluster); it is made anew to join it on a restart.
	boot bool
}

type galeraPorts struct{ group, ist, sst int }

// galeraLink is a proxy to a member on one of its ports.
type galeraLink struct {
	l    *proxies.Link
	port int
}

// layoutGalera picks every member's ports, adds the proxies to them
// from the other sites, and creates the containers (not started).
func (d *Driver) layoutGalera(ctx context.Context, g *galera) error {
	g.ports = make([]galeraPorts, len(g.members))
	g.in = make([][]galeraLink, len(g.members))
	for i, y := range g.members {
		var gws []string // the gateways of the other sites, once each
		var from []*database
		for _, x := range g.members {
			if x.server.Site == y.server.Site || containsSite(from, x.server.Site) {
				continue
			}
			if !proxies.Linked(d.cfg.Topology, x.server.Site, y.server.Site) {
				return fmt.Errorf("docker: database %s: Galera node %s cannot reach %s: no link between sites %s and %s",
					g.spec.Name, x.server.Name, y.server.Name, x.server.Site, y.server.Site)
			}
			from = append(from, x)
			gws = append(gws, x.site.gateway)
		}
		if len(gws) == 0 {
			// Nothing listens for its ports outside its container.
			gws = []string{"127.0.0.1"}
		}
		for _, p := range []*int{&g.ports[i].group, &g.ports[i].ist, &g.ports[i].sst} {
			// Free on every gateway the proxies to it listen on.
			port, err := freeport.PortOn(gws...)
			if err != nil {
				return fmt.Errorf("docker: database %s: %w", y.server.Name, err)
			}
			*p = port
			for _, x := range from {
				l := &proxies.Link{Name: "site " + x.server.Site + "->" + y.server.Name + "/galera:" + strconv.Itoa(port),
					FromSite: x.server.Site, ToSite: y.server.Site, ToNode: y.server.Name,
					Listen: net.JoinHostPort(x.site.gateway, strconv.Itoa(port)), From: x.site.subnet}
				if err := d.px.Add(l, ""); err != nil {
					return err
				}
				g.in[i] = append(g.in[i], galeraLink{l, port})
			}
		}
	}
	g.boot = true
	for _, m := range g.members {
		if err := d.createDatabase(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func containsSite(dbs []*database, site string) bool {
	for _, db := range dbs {
		if db.server.Site == site {
			return true
		}
	}
	return false
}

// member is db's index in g.
func (g *galera) member(db *database) int {
	for i, m := range g.members {
		if m == db {
			return i
		}
	}
	return -1
}

// args are the server flags of member db: Galera's, as dbserver sets
// them on the local driver, with the names and ports above (the group
// and IST listeners bound on every interface of the container, the name
// advertised). The first member bootstraps the cluster while g.boot.
func (g *galera) args(db *database) []string {
	i := g.member(db)
	p := g.ports[i]
	var members []string
	for j, m := range g.members {
		members = append(members, m.server.Name+":"+strconv.Itoa(g.ports[j].group))
	}
	name := db.server.Name
	args := dbserver.GaleraFlags(galeraLib, name, members, name+":"+strconv.Itoa(p.group),
		fmt.Sprintf("gmcast.listen_addr=tcp://0.0.0.0:%d;ist.recv_addr=%s:%d;ist.recv_bind=0.0.0.0:%d;gcache.size=64M", p.group, name, p.ist, p.ist),
		fmt.Sprintf("%s:%d", name, p.sst))
	if i == 0 && g.boot {
		args = append(args, "--wsrep-new-cluster")
	}
	return args
}

// hosts are the /etc/hosts entries of member db's container: every
// member of another site stands for db's site network gateway, where
// the proxies to it listen.
func (g *galera) hosts(db *database) []string {
	var hs []string
	for _, m := range g.members {
		if m.server.Site != db.server.Site {
			hs = append(hs, m.server.Name+":"+db.site.gateway)
		}
	}
	return hs
}

// point points the proxies to member db at its container's address ip,
// or resets them ("": db is down).
func (g *galera) point(db *database, ip string) error {
	for _, gl := range g.in[g.member(db)] {
		up := ""
		if ip != "" {
			up = net.JoinHostPort(ip, strconv.Itoa(gl.port))
		}
		if err := g.d.px.SetUpstream(gl.l, up); err != nil {
			return err
		}
	}
	return nil
}

// start starts the first member, which bootstraps the cluster, then
// every other one, each joining (a state transfer from a donor) before
// the next starts.
func (g *galera) start(ctx context.Context) error {
	t0 := time.Now()
	for _, m := range g.members {
		if err := g.d.startDatabase(ctx, m); err != nil {
			return err
		}
	}
	g.d.log("database %s: Galera cluster of %d nodes ready in %s", g.spec.Name, len(g.members), time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// restart starts member db again on its volume, to join the cluster: the
// bootstrapping member's container is made anew without
// --wsrep-new-cluster first (a second bootstrap would be a second
// cluster taking writes).
func (g *galera) restart(ctx context.Context, db *database) error {
	if ok, err := g.d.dbRunning(ctx, db); err != nil || ok {
		return err
	}
	if g.member(db) == 0 && g.boot {
		g.boot = false
		if _, err := g.d.cli.ContainerRemove(ctx, db.cid(), client.ContainerRemoveOptions{Force: true}); err != nil {
			return fmt.Errorf("docker: database %s: remove container: %w", db.server.Name, err)
		}
		if err := g.d.createDatabase(ctx, db); err != nil {
			return err
		}
	}
	return g.d.startDatabase(ctx, db)
}

// waitSynced waits until the Galera node at addr (host:port on its site
// network) is synced with the cluster: a joiner accepts connections once
// its state transfer is in, and may still apply what it missed.
func waitSynced(ctx context.Context, addr string) error {
	db, err := sql.Open("mysql", dsnAt(scenario.MariaDB, addr, ""))
	if err != nil {
		return err
	}
	defer db.Close()
	state := ""
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var name string
		err = db.QueryRowContext(qctx, "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'").Scan(&name, &state)
		cancel()
		if err == nil && state == "Synced" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not synced with the cluster (state %q, %v): %w", state, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dsn is the data source name of node's broker (in site): every member
// through the broker's proxy to it, those in the broker's site first,
// so the broker writes to the nearest node while it is ready.
// wsrep_sync_wait=1 makes the broker's reads (its recovery after a
// reconnect to another node above all) wait until the node has applied
// every write set the cluster certified before the read.
func (g *galera) dsn(node, site string) string {
	var near, far []string
	for _, m := range g.members {
		l := m.links[node]
		if l == nil {
			return ""
		}
		if m.server.Site == site {
			near = append(near, l.Listen)
		} else {
			far = append(far, l.Listen)
		}
	}
	return dsnAt(scenario.MariaDB, strings.Join(append(near, far...), ","), g.members[0].name) + "?wsrep_sync_wait=1"
}
