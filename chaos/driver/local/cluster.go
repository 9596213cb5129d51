package local

import (
	"context"
	"fmt"
	"slices"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver/internal/ha"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// cluster is a replicated PostgreSQL database (scenario replicas): its
// servers as dbserver processes, run for the HA policy (ha.Cluster: which
// one is primary, what each standby streams from, failover).
//
// Every server streams from its primary through a proxy on the link
// between their sites (repl), so link faults between the sites apply to
// replication. The HA manager checks the primary on its own address (it
// is the harness's witness, not a node). A fenced old primary comes back
// from a new base backup (pg_rewind is not used).
type cluster struct {
	d       *Driver
	spec    scenario.Database
	members []*database // the database's servers, in spec.Servers() order
	// repl[x][y] is the proxy from server x to server y, through which
	// x streams when y is its primary.
	repl map[string]map[string]*proxies.Link
	ha   *ha.Cluster
}

// layoutReplication adds a proxy from every server of cl to every other
// one whose site it reaches (validation requires the replicas' sites to
// reach the primary's).
func (d *Driver) layoutReplication(cl *cluster) error {
	cl.repl = map[string]map[string]*proxies.Link{}
	cl.d = d
	cl.ha = ha.New(cl.spec, cl, func(f string, a ...any) { d.opt.Log(f, a...) })
	for _, x := range cl.members {
		cl.repl[x.server.Name] = map[string]*proxies.Link{}
		for _, y := range cl.members {
			if x == y || !d.linked(x.server.Site, y.server.Site) {
				continue
			}
			l, err := d.dbLink(x.server.Name, x.server.Site, y)
			if err != nil {
				return err
			}
			cl.repl[x.server.Name][y.server.Name] = l
		}
	}
	return nil
}

// dsn is the data source name of node's broker (ha.DSN): every server,
// each through the node's own proxy to it.
func (cl *cluster) dsn(node string) string {
	var links []map[string]*proxies.Link
	for _, m := range cl.members {
		links = append(links, m.links)
	}
	return ha.DSN(node, cl.members[0].name, links...)
}

// srvOf returns m's server (nil before it started).
func srvOf(m *database) *dbserver.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv
}

// startCluster starts cl's primary, then its HA policy makes the
// replicas standbys of it and starts the manager.
func (d *Driver) startCluster(ctx context.Context, cl *cluster) error {
	if err := d.startDatabase(ctx, cl.members[0]); err != nil {
		return err
	}
	if err := cl.ha.Start(ctx); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

// restartMember starts server db of a cluster again (ha.Cluster.Restart).
func (d *Driver) restartMember(ctx context.Context, db *database) error {
	if srvOf(db) == nil {
		return fmt.Errorf("local: database %q: not started", db.server.Name)
	}
	if err := db.cl.ha.Restart(ctx, db.cl.index(db)); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

func (cl *cluster) index(db *database) int {
	return slices.Index(cl.members, db)
}

var _ ha.Servers = (*cluster)(nil)

// Running implements ha.Servers.
func (cl *cluster) Running(m int) bool {
	s := srvOf(cl.members[m])
	return s != nil && s.Running()
}

// WALPosition implements ha.Servers.
func (cl *cluster) WALPosition(ctx context.Context, m int) (uint64, error) {
	s := srvOf(cl.members[m])
	if s == nil {
		return 0, fmt.Errorf("local: database %s: not started", cl.members[m].server.Name)
	}
	return s.WALPosition(ctx)
}

// Kill implements ha.Servers.
func (cl *cluster) Kill(m int) error { return srvOf(cl.members[m]).Kill() }

// Promote implements ha.Servers.
func (cl *cluster) Promote(ctx context.Context, m int) error {
	return srvOf(cl.members[m]).Promote(ctx)
}

// Restart implements ha.Servers.
func (cl *cluster) Restart(ctx context.Context, m int) error {
	return srvOf(cl.members[m]).Restart(ctx)
}

// SetSynchronousStandbys implements ha.Servers.
func (cl *cluster) SetSynchronousStandbys(ctx context.Context, p int, names ...string) error {
	return srvOf(cl.members[p]).SetSynchronousStandbys(ctx, names...)
}

// WaitStandby implements ha.Servers.
func (cl *cluster) WaitStandby(ctx context.Context, p int, name string, sync bool) error {
	return srvOf(cl.members[p]).WaitStandby(ctx, name, sync)
}

// Standby implements ha.Servers: a first base backup of p through the
// proxy from m's site to p's, or a rebuild of what m was, then the
// nodes' proxies to m point at it.
func (cl *cluster) Standby(ctx context.Context, m, p int) (string, error) {
	r, pd := cl.members[m], cl.members[p]
	l := cl.repl[r.server.Name][pd.server.Name]
	if l == nil {
		return "", fmt.Errorf("local: database %s cannot stream from %s: no link between sites %s and %s",
			r.server.Name, pd.server.Name, r.server.Site, pd.server.Site)
	}
	srv := srvOf(r)
	var err error
	if srv == nil {
		srv, err = dbserver.StartPostgresStandby(ctx, r.dir, l.Listen, r.server.Name, cl.d.dbOptions(r)...)
		if srv != nil {
			r.mu.Lock()
			r.srv = srv
			r.mu.Unlock()
		}
	} else {
		err = srv.RebuildStandby(ctx, l.Listen, r.server.Name)
	}
	if err != nil {
		return "", err
	}
	return l.Name, cl.d.pointLinks(r, srv.Addr())
}
