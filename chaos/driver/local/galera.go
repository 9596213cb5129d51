package local

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// galeraStart bounds the start of a Galera cluster's node: a joiner
// receives the whole data directory (rsync SST), which takes minutes on
// a loaded machine.
const galeraStart = 4 * time.Minute

// galera is a MariaDB Galera cluster (a mariadb database with replicas):
// every server is a node that takes writes, and a COMMIT returns once
// every node has certified it. There is no primary, so no HA manager: a
// broker is given every node, through its own proxy to each, and
// connects to the first that is ready (sqlstore's failover DSN), its own
// site's first.
//
// The nodes' group communication does not go through the link proxies:
// Galera connects to the address each member advertises (its listen
// address), one for all its peers, so a proxy per pair of sites cannot
// sit between them on one loopback interface. Link faults between the
// sites reach the brokers' connections to the nodes, not the replication;
// db-lost, db-data-lost and site-lost reach the nodes themselves.
type galera struct {
	spec    scenario.Database
	members []*database
}

// startGalera starts every node of g, then the run's database on it.
func (d *Driver) startGalera(ctx context.Context, g *galera) error {
	t0 := time.Now()
	dirs := make([]string, len(g.members))
	for i, m := range g.members {
		dirs[i] = m.dir
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(len(dirs))*galeraStart)
	defer cancel()
	srvs, err := dbserver.StartGalera(ctx, dirs, append(d.dbOptions(g.members[0]), dbserver.WithStartTimeout(galeraStart))...)
	for i, srv := range srvs {
		m := g.members[i]
		m.mu.Lock()
		m.srv = srv
		m.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("local: database %s: galera: %w", g.spec.Name, err)
	}
	if err := srvs[0].CreateDatabase(ctx, g.members[0].name); err != nil {
		return fmt.Errorf("local: database %s: create %s: %w", g.spec.Name, g.members[0].name, err)
	}
	for i, m := range g.members {
		if err := d.pointLinks(m, srvs[i].Addr()); err != nil {
			return err
		}
	}
	d.opt.Log("database %s: Galera cluster of %d nodes ready in %s", g.spec.Name, len(srvs), time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// dsn is the data source name of node's broker (in site): every node of
// g through the broker's proxy to it, those in the broker's site first,
// so the broker writes to the nearest node while it is ready.
// wsrep_sync_wait=1 makes the broker's reads (its recovery after a
// reconnect to another node above all) wait until the node has applied
// every write set the cluster certified before the read: a node may
// hold a certified transaction it has not applied yet.
func (g *galera) dsn(node, site string) string {
	var near, far []string
	var srv *dbserver.Server
	for _, m := range g.members {
		l := m.links[node]
		s := srvOf(m)
		if l == nil || s == nil {
			return ""
		}
		srv = s
		if m.server.Site == site {
			near = append(near, l.Listen)
		} else {
			far = append(far, l.Listen)
		}
	}
	if srv == nil {
		return ""
	}
	one := srv.DSN(g.members[0].name)
	return strings.Replace(one, "("+srv.Addr()+")", "("+strings.Join(append(near, far...), ",")+")", 1) + "?wsrep_sync_wait=1"
}
