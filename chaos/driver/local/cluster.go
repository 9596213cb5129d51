package local

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// HA manager timings.
const (
	// haCheck is how often the HA manager checks the primary.
	haCheck = 200 * time.Millisecond
	// haAnswer bounds one check: a primary that does not answer a query
	// within it (paused, hung, cut off) failed the check.
	haAnswer = time.Second
	// haStep bounds a promotion, a rebuild, a wait for a standby.
	haStep = 2 * time.Minute
)

// cluster is a replicated PostgreSQL database (scenario replicas): its
// servers, which one is primary now, what each standby streams from, and
// its HA manager (scenario failover).
//
// Every server streams from its primary through a proxy on the link
// between their sites (repl), so link faults between the sites apply to
// replication. The HA manager checks the primary on its own address (it
// is the harness's witness, not a node) and, once the primary has failed
// every check for promote_after, fences it (kill -9), promotes a replica
// and makes the others standbys of it. A fenced old primary never serves
// as a primary again: RestartDB rebuilds it as a standby of the current
// primary (a new base backup: its data may hold WAL the new primary never
// had).
type cluster struct {
	spec    scenario.Database
	members []*database // the database's servers, the first primary at the start
	// repl[x][y] is the proxy from server x to server y, through which
	// x streams when y is its primary.
	repl map[string]map[string]*proxies.Link

	// mu serialises the manager's failover with restarts and kills, and
	// guards the fields below.
	mu      sync.Mutex
	primary *database
	follows map[*database]*database // each running standby's primary
	fenced  map[*database]bool      // old primaries: come back rebuilt
	// lastPos is the primary's WAL position at its last answered check
	// (0 until one): the yardstick of failover's max_lag.
	lastPos uint64

	stop, done chan struct{} // the HA manager's; nil without failover
}

// layoutReplication adds a proxy from every server of cl to every other
// one whose site it reaches (validation requires the replicas' sites to
// reach the primary's).
func (d *Driver) layoutReplication(cl *cluster) error {
	cl.repl = map[string]map[string]*proxies.Link{}
	cl.follows = map[*database]*database{}
	cl.fenced = map[*database]bool{}
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

// dsn is the data source name of node's broker: every server, each
// through the node's own proxy to it, the primary at the start first;
// pgx tries them in turn and keeps the first that takes writes
// (target_session_attrs=read-write), so a reconnect finds the promoted
// replica. connect_timeout bounds each server's try (a cut link).
func (cl *cluster) dsn(node string) string {
	var hosts []string
	for _, m := range cl.members {
		l := m.links[node]
		if l == nil {
			return ""
		}
		hosts = append(hosts, l.Listen)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=3",
		strings.Join(hosts, ","), cl.members[0].name)
}

// srvOf returns m's server (nil before it started).
func srvOf(m *database) *dbserver.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv
}

// startCluster starts cl's primary, a base backup of it for each replica,
// names the sync replicas synchronous and waits until each streams, then
// starts the HA manager.
func (d *Driver) startCluster(ctx context.Context, cl *cluster) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	p := cl.members[0]
	if err := d.startDatabase(ctx, p); err != nil {
		return err
	}
	cl.primary = p
	for _, r := range cl.members[1:] {
		if err := d.startStandby(ctx, cl, r); err != nil {
			return err
		}
	}
	if err := d.syncStandbys(ctx, cl); err != nil {
		return err
	}
	if fo := cl.spec.Failover; fo != nil {
		cl.stop, cl.done = make(chan struct{}), make(chan struct{})
		go d.manage(cl, fo.PromoteAfter.D())
	}
	return nil
}

// startStandby makes r a new standby of cl's primary: a first base
// backup, or a rebuild of what r was (an old primary, a standby of one),
// and waits until it streams. cl.mu is held.
func (d *Driver) startStandby(ctx context.Context, cl *cluster, r *database) error {
	p := cl.primary
	l := cl.repl[r.server.Name][p.server.Name]
	if l == nil {
		return fmt.Errorf("local: database %s cannot stream from %s: no link between sites %s and %s",
			r.server.Name, p.server.Name, r.server.Site, p.server.Site)
	}
	ctx, cancel := context.WithTimeout(ctx, haStep)
	defer cancel()
	t0 := time.Now()
	srv := srvOf(r)
	var err error
	if srv == nil {
		srv, err = dbserver.StartPostgresStandby(ctx, r.dir, l.Listen, r.server.Name, d.dbOptions(r)...)
		if srv != nil {
			r.mu.Lock()
			r.srv = srv
			r.mu.Unlock()
		}
	} else {
		err = srv.RebuildStandby(ctx, l.Listen, r.server.Name)
	}
	if err != nil {
		return fmt.Errorf("local: database %s: standby of %s: %w", r.server.Name, p.server.Name, err)
	}
	delete(cl.fenced, r)
	cl.follows[r] = p
	if err := d.pointLinks(r, srv.Addr()); err != nil {
		return err
	}
	if err := srvOf(p).WaitStandby(ctx, r.server.Name, false); err != nil {
		return fmt.Errorf("local: database %s: %w", r.server.Name, err)
	}
	d.opt.Log("database %s: standby of %s (streaming through %s) ready in %s", r.server.Name, p.server.Name,
		l.Name, time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// syncStandbys names, on the primary, the sync replicas that stream from
// it and run, and waits until one counts as synchronous. A primary with
// none (right after a failover) commits alone. cl.mu is held.
func (d *Driver) syncStandbys(ctx context.Context, cl *cluster) error {
	p := srvOf(cl.primary)
	if p == nil || !p.Running() {
		return nil
	}
	var names []string
	for _, m := range cl.members {
		if s := srvOf(m); cl.wantsSync(m) && cl.follows[m] == cl.primary && s != nil && s.Running() {
			names = append(names, m.server.Name)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, haStep)
	defer cancel()
	if err := p.SetSynchronousStandbys(ctx, names...); err != nil {
		return fmt.Errorf("local: database %s: %w", cl.primary.server.Name, err)
	}
	for _, n := range names {
		if err := p.WaitStandby(ctx, n, true); err != nil {
			return fmt.Errorf("local: database %s: %w", cl.primary.server.Name, err)
		}
	}
	if len(names) > 0 {
		d.opt.Log("database %s: primary %s, synchronous standbys %s", cl.spec.Name, cl.primary.server.Name, strings.Join(names, ", "))
	}
	return nil
}

// wantsSync reports whether m is synchronous when it is a standby: a
// replica as the scenario says; the first server, an old primary rebuilt
// as a standby, when any replica is (a synchronous cluster stays one).
func (cl *cluster) wantsSync(m *database) bool {
	if m.server.Replica {
		return m.server.Sync
	}
	for _, r := range cl.spec.Replicas {
		if r.Sync {
			return true
		}
	}
	return false
}

// answers reports whether server m runs and answers a query in time,
// and its WAL position.
func answers(m *database) (uint64, bool) {
	srv := srvOf(m)
	if srv == nil || !srv.Running() {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), haAnswer)
	defer cancel()
	pos, err := srv.WALPosition(ctx)
	return pos, err == nil
}

// manage is cl's HA manager: it checks the primary every haCheck and
// fails over once it has failed every check for after.
func (d *Driver) manage(cl *cluster, after time.Duration) {
	defer close(cl.done)
	t := time.NewTicker(haCheck)
	defer t.Stop()
	var since time.Time
	stuck := false
	for {
		select {
		case <-cl.stop:
			return
		case <-t.C:
		}
		cl.mu.Lock()
		p := cl.primary
		cl.mu.Unlock()
		if pos, ok := answers(p); ok {
			cl.mu.Lock()
			if cl.primary == p {
				cl.lastPos = max(cl.lastPos, pos)
			}
			cl.mu.Unlock()
			if !since.IsZero() {
				d.opt.Log("ha %s: primary %s answers again after %s", cl.spec.Name, p.server.Name, time.Since(since).Truncate(time.Millisecond))
			}
			since, stuck = time.Time{}, false
			continue
		}
		if since.IsZero() {
			since = time.Now()
			d.opt.Log("ha %s: primary %s does not answer; promoting a replica if it still does not in %s", cl.spec.Name, p.server.Name, after)
		}
		if time.Since(since) < after {
			continue
		}
		done, err := d.failover(cl, p, time.Since(since))
		switch {
		case done:
			since, stuck = time.Time{}, false
		case err != nil && !stuck:
			d.opt.Log("ha %s: cannot fail over yet: %v", cl.spec.Name, err)
			stuck = true
		}
	}
}

// failover replaces primary old, lost for down: it fences old (kill -9),
// promotes a running standby of it (sync ones first; with max_lag, only
// one no further behind old's last known position) and makes every
// other running server a standby of the new primary. It reports false
// with the reason when there is nothing to promote yet: old is then
// neither fenced nor replaced, and the database stays unavailable until
// old answers again.
func (d *Driver) failover(cl *cluster, old *database, down time.Duration) (bool, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if _, ok := answers(old); cl.primary != old || ok {
		return true, nil // restarted, or replaced, meanwhile
	}
	cand, err := d.candidate(cl, old)
	if cand == nil {
		return false, err
	}
	// Fence first: the old primary must never take a write again.
	if s := srvOf(old); s != nil && s.Running() {
		d.opt.Log("ha %s: fencing %s (kill -9)", cl.spec.Name, old.server.Name)
		if err := s.Kill(); err != nil {
			return false, fmt.Errorf("fence %s: %w", old.server.Name, err)
		}
	}
	cl.fenced[old] = true
	delete(cl.follows, old)
	ctx, cancel := context.WithTimeout(context.Background(), haStep)
	defer cancel()
	if err := srvOf(cand).Promote(ctx); err != nil {
		return false, fmt.Errorf("promote %s: %w", cand.server.Name, err)
	}
	cl.primary, cl.lastPos = cand, 0
	delete(cl.follows, cand)
	d.opt.Log("ha %s: promoted %s to primary (%s lost for %s)", cl.spec.Name, cand.server.Name, old.server.Name, down.Truncate(time.Millisecond))
	for _, m := range cl.members {
		if s := srvOf(m); m != old && m != cand && s != nil && s.Running() {
			if err := d.startStandby(ctx, cl, m); err != nil {
				d.opt.Log("ha %s: %v", cl.spec.Name, err)
			}
		}
	}
	if err := d.syncStandbys(ctx, cl); err != nil {
		d.opt.Log("ha %s: %v", cl.spec.Name, err)
	}
	return true, nil
}

// candidate picks the standby of old to promote: a running one, sync
// ones first, within the failover's max_lag of old's last known WAL
// position when it has one. With none, the error says why. cl.mu is
// held.
func (d *Driver) candidate(cl *cluster, old *database) (*database, error) {
	maxLag := uint64(cl.spec.Failover.MaxLag)
	var behind []string
	for _, sync := range []bool{true, false} {
		for _, m := range cl.members {
			s := srvOf(m)
			if m == old || cl.wantsSync(m) != sync || cl.follows[m] != old || s == nil || !s.Running() {
				continue
			}
			if maxLag == 0 {
				return m, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), haAnswer)
			pos, err := s.WALPosition(ctx)
			cancel()
			switch {
			case err != nil:
				behind = append(behind, fmt.Sprintf("%s: %v", m.server.Name, err))
			case cl.lastPos > pos && cl.lastPos-pos > maxLag:
				behind = append(behind, fmt.Sprintf("%s is %d bytes behind", m.server.Name, cl.lastPos-pos))
			default:
				return m, nil
			}
		}
	}
	if len(behind) > 0 {
		return nil, fmt.Errorf("no standby of %s within max_lag %s of its last known WAL position (%s); not promoting: the database is unavailable until %s is back",
			old.server.Name, scenario.Size(maxLag), strings.Join(behind, "; "), old.server.Name)
	}
	return nil, fmt.Errorf("no running standby of %s to promote", old.server.Name)
}

// restartMember starts server db of a cluster again: the primary (no
// failover happened) and a standby of the current primary on their
// data; an old primary, or a standby of one, rebuilt as a standby of the
// current primary. A sync replica is then named synchronous again.
func (d *Driver) restartMember(ctx context.Context, db *database) error {
	cl := db.cl
	cl.mu.Lock()
	defer cl.mu.Unlock()
	srv := srvOf(db)
	if srv == nil {
		return fmt.Errorf("local: database %q: not started", db.server.Name)
	}
	if srv.Running() {
		return nil
	}
	t0 := time.Now()
	if db == cl.primary || (cl.follows[db] == cl.primary && !cl.fenced[db]) {
		if err := srv.Restart(ctx); err != nil {
			return fmt.Errorf("local: restart database %s: %w", db.server.Name, err)
		}
		d.opt.Log("database %s restarted in %s", db.server.Name, time.Since(t0).Truncate(time.Millisecond))
	} else {
		d.opt.Log("database %s: rebuilding as a standby of %s (it was %s)", db.server.Name, cl.primary.server.Name, roleOf(cl, db))
		if err := d.startStandby(ctx, cl, db); err != nil {
			return err
		}
	}
	return d.syncStandbys(ctx, cl)
}

func roleOf(cl *cluster, db *database) string {
	switch {
	case cl.fenced[db]:
		return "a primary, fenced"
	case cl.follows[db] != nil:
		return "a standby of " + cl.follows[db].server.Name
	}
	return "not streaming"
}

// stopManager stops cl's HA manager, if it has one, and waits for it.
func (cl *cluster) stopManager() {
	if cl.stop == nil {
		return
	}
	select {
	case <-cl.stop:
	default:
		close(cl.stop)
	}
	<-cl.done
}
