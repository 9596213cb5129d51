// Package ha is the HA policy of a replicated PostgreSQL database
// (scenario replicas and failover), shared by the drivers: which server
// is primary, what each standby streams from, when to promote (a primary
// that failed every check for promote_after), which standby (sync ones
// first, within max_lag), in which order (fence the old primary, then
// promote), and how a server comes back (an old primary, or a standby of
// one, rebuilt as a standby of the current primary). The drivers run the
// servers behind the Servers interface.
package ha

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Timings of the HA manager.
const (
	// Check is how often the HA manager checks the primary.
	Check = 200 * time.Millisecond
	// Answer bounds one check: a primary that does not answer a query
	// within it (paused, hung, cut off) failed the check.
	Answer = time.Second
	// Step bounds a promotion, a rebuild, a wait for a standby.
	Step = 2 * time.Minute
)

// Servers runs the servers of a replicated PostgreSQL database for its
// Cluster. A server is its index in the database's Servers(): 0 is the
// primary at the start. Every method but Running may be slow; each gets
// a context that bounds it.
type Servers interface {
	// Running reports whether server m runs (false before it started).
	Running(m int) bool
	// WALPosition asks server m for its WAL position: a primary's
	// current write position, a standby's last replayed one.
	WALPosition(ctx context.Context, m int) (uint64, error)
	// Kill crashes server m (kill -9): it must take no write after.
	Kill(m int) error
	// Promote makes standby m a primary and returns once it takes writes.
	Promote(ctx context.Context, m int) error
	// Standby makes m a standby of primary p streaming through the link
	// from m's site to p's (a first base backup, or a rebuild of what m
	// was) and returns once it started, with the name of that link.
	Standby(ctx context.Context, m, p int) (link string, err error)
	// Restart starts server m again on its data.
	Restart(ctx context.Context, m int) error
	// SetSynchronousStandbys names, on primary p, its synchronous
	// standbys by server name (none: it commits alone).
	SetSynchronousStandbys(ctx context.Context, p int, names ...string) error
	// WaitStandby waits until server name streams from primary p, and
	// counts as synchronous if sync.
	WaitStandby(ctx context.Context, p int, name string, sync bool) error
}

// DSN is node's data source name of database db on a replicated
// PostgreSQL whose servers' link proxies, by node name, are links (the
// first primary first): every server through node's own proxy to it, ""
// when node has none to one. pgx tries them in turn and keeps the first
// that takes writes (target_session_attrs=read-write), so a reconnect
// finds a promoted replica; connect_timeout bounds each server's try (a
// cut link).
func DSN(node, db string, links ...map[string]*proxies.Link) string {
	var hosts []string
	for _, ls := range links {
		l := ls[node]
		if l == nil {
			return ""
		}
		hosts = append(hosts, l.Listen)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=3",
		strings.Join(hosts, ","), db)
}

// Cluster is the state of a replicated PostgreSQL database and its HA
// manager. The manager checks the primary on the driver's own path (it
// is the harness's witness, not a node) and, once the primary has failed
// every check for promote_after, fences it, promotes a standby and makes
// the others standbys of it. A fenced old primary never serves as a
// primary again: Restart rebuilds it as a standby of the current primary
// (its data may hold WAL the new primary never had).
type Cluster struct {
	spec    scenario.Database
	servers []scenario.DBServer
	srv     Servers
	log     func(format string, args ...any)

	// mu serialises the manager's failover with restarts and kills, and
	// guards the fields below.
	mu      sync.Mutex
	primary int
	follows map[int]int  // each running standby's primary
	fenced  map[int]bool // old primaries: come back rebuilt
	// lastPos is the primary's WAL position at its last answered check
	// (0 until one): the yardstick of failover's max_lag.
	lastPos uint64

	stop, done chan struct{} // the HA manager's; nil without failover
}

// New returns the cluster of spec (a PostgreSQL database with replicas)
// whose servers srv runs; log reports what the manager does.
func New(spec scenario.Database, srv Servers, log func(format string, args ...any)) *Cluster {
	return &Cluster{spec: spec, servers: spec.Servers(), srv: srv, log: log,
		follows: map[int]int{}, fenced: map[int]bool{}}
}

// Lock holds the cluster still (no failover, restart or kill meanwhile)
// until Unlock.
func (c *Cluster) Lock() { c.mu.Lock() }

// Unlock lets the cluster move again.
func (c *Cluster) Unlock() { c.mu.Unlock() }

// Primary returns the server that is primary now.
func (c *Cluster) Primary() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.primary
}

// LastPos returns the primary's WAL position at the manager's last
// answered check (0 until one, and again after a failover).
func (c *Cluster) LastPos() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastPos
}

func (c *Cluster) name(m int) string { return c.servers[m].Name }

// Start makes server 0, started by the driver, the primary, makes every
// replica a standby of it, names the sync ones synchronous and waits
// until each streams, then starts the HA manager (with failover).
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.primary = 0
	for r := 1; r < len(c.servers); r++ {
		if err := c.standby(ctx, r); err != nil {
			return err
		}
	}
	if err := c.syncStandbys(ctx); err != nil {
		return err
	}
	if fo := c.spec.Failover; fo != nil {
		c.stop, c.done = make(chan struct{}), make(chan struct{})
		go c.manage(fo.PromoteAfter.D())
	}
	return nil
}

// standby makes r a new standby of the primary (Servers.Standby) and
// waits until it streams. c.mu is held.
func (c *Cluster) standby(ctx context.Context, r int) error {
	p := c.primary
	ctx, cancel := context.WithTimeout(ctx, Step)
	defer cancel()
	t0 := time.Now()
	link, err := c.srv.Standby(ctx, r, p)
	if err != nil {
		return fmt.Errorf("database %s: standby of %s: %w", c.name(r), c.name(p), err)
	}
	delete(c.fenced, r)
	c.follows[r] = p
	if err := c.srv.WaitStandby(ctx, p, c.name(r), false); err != nil {
		return fmt.Errorf("database %s: %w", c.name(r), err)
	}
	c.log("database %s: standby of %s (streaming through %s) ready in %s", c.name(r), c.name(p),
		link, time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// following reports whether m is a standby of p.
func (c *Cluster) following(m, p int) bool {
	f, ok := c.follows[m]
	return ok && f == p
}

// syncStandbys names, on the primary, the sync replicas that stream from
// it and run, and waits until each counts as synchronous. A primary with
// none (right after a failover) commits alone. c.mu is held.
func (c *Cluster) syncStandbys(ctx context.Context) error {
	p := c.primary
	if !c.srv.Running(p) {
		return nil
	}
	var names []string
	for m := range c.servers {
		if m != p && c.wantsSync(m) && c.following(m, p) && c.srv.Running(m) {
			names = append(names, c.name(m))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, Step)
	defer cancel()
	if err := c.srv.SetSynchronousStandbys(ctx, p, names...); err != nil {
		return fmt.Errorf("database %s: %w", c.name(p), err)
	}
	for _, n := range names {
		if err := c.srv.WaitStandby(ctx, p, n, true); err != nil {
			return fmt.Errorf("database %s: %w", c.name(p), err)
		}
	}
	if len(names) > 0 {
		c.log("database %s: primary %s, synchronous standbys %s", c.spec.Name, c.name(p), strings.Join(names, ", "))
	}
	return nil
}

// wantsSync reports whether m is synchronous when it is a standby: a
// replica as the scenario says; the first server, an old primary rebuilt
// as a standby, when any replica is (a synchronous cluster stays one).
func (c *Cluster) wantsSync(m int) bool {
	if s := c.servers[m]; s.Replica {
		return s.Sync
	}
	for _, r := range c.spec.Replicas {
		if r.Sync {
			return true
		}
	}
	return false
}

// answers reports whether server m runs and answers a query in time,
// and its WAL position.
func (c *Cluster) answers(m int) (uint64, bool) {
	if !c.srv.Running(m) {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), Answer)
	defer cancel()
	pos, err := c.srv.WALPosition(ctx, m)
	return pos, err == nil
}

// manage is the HA manager: it checks the primary every Check and fails
// over once it has failed every check for after.
func (c *Cluster) manage(after time.Duration) {
	defer close(c.done)
	t := time.NewTicker(Check)
	defer t.Stop()
	var since time.Time
	stuck := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		p := c.Primary()
		if pos, ok := c.answers(p); ok {
			c.mu.Lock()
			if c.primary == p {
				c.lastPos = max(c.lastPos, pos)
			}
			c.mu.Unlock()
			if !since.IsZero() {
				c.log("ha %s: primary %s answers again after %s", c.spec.Name, c.name(p), time.Since(since).Truncate(time.Millisecond))
			}
			since, stuck = time.Time{}, false
			continue
		}
		if since.IsZero() {
			since = time.Now()
			c.log("ha %s: primary %s does not answer; promoting a replica if it still does not in %s", c.spec.Name, c.name(p), after)
		}
		if time.Since(since) < after {
			continue
		}
		done, err := c.failover(p, time.Since(since))
		switch {
		case done:
			since, stuck = time.Time{}, false
		case err != nil && !stuck:
			c.log("ha %s: cannot fail over yet: %v", c.spec.Name, err)
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
func (c *Cluster) failover(old int, down time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.answers(old); c.primary != old || ok {
		return true, nil // restarted, or replaced, meanwhile
	}
	cand, err := c.candidate(old)
	if cand < 0 {
		return false, err
	}
	// Fence first: the old primary must never take a write again.
	if c.srv.Running(old) {
		c.log("ha %s: fencing %s (kill -9)", c.spec.Name, c.name(old))
		if err := c.srv.Kill(old); err != nil {
			return false, fmt.Errorf("fence %s: %w", c.name(old), err)
		}
	}
	c.fenced[old] = true
	delete(c.follows, old)
	ctx, cancel := context.WithTimeout(context.Background(), Step)
	defer cancel()
	if err := c.srv.Promote(ctx, cand); err != nil {
		return false, fmt.Errorf("promote %s: %w", c.name(cand), err)
	}
	c.primary, c.lastPos = cand, 0
	delete(c.follows, cand)
	c.log("ha %s: promoted %s to primary (%s lost for %s)", c.spec.Name, c.name(cand), c.name(old), down.Truncate(time.Millisecond))
	for m := range c.servers {
		if m != old && m != cand && c.srv.Running(m) {
			if err := c.standby(ctx, m); err != nil {
				c.log("ha %s: %v", c.spec.Name, err)
			}
		}
	}
	if err := c.syncStandbys(ctx); err != nil {
		c.log("ha %s: %v", c.spec.Name, err)
	}
	return true, nil
}

// candidate picks the standby of old to promote: a running one, sync
// ones first, within the failover's max_lag of old's last known WAL
// position when it has one. With none, it returns -1 and an error that
// says why. c.mu is held.
func (c *Cluster) candidate(old int) (int, error) {
	maxLag := uint64(c.spec.Failover.MaxLag)
	var behind []string
	for _, sync := range []bool{true, false} {
		for m := range c.servers {
			if m == old || c.wantsSync(m) != sync || !c.following(m, old) || !c.srv.Running(m) {
				continue
			}
			if maxLag == 0 {
				return m, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), Answer)
			pos, err := c.srv.WALPosition(ctx, m)
			cancel()
			switch {
			case err != nil:
				behind = append(behind, fmt.Sprintf("%s: %v", c.name(m), err))
			case c.lastPos > pos && c.lastPos-pos > maxLag:
				behind = append(behind, fmt.Sprintf("%s is %d bytes behind", c.name(m), c.lastPos-pos))
			default:
				return m, nil
			}
		}
	}
	if len(behind) > 0 {
		return -1, fmt.Errorf("no standby of %s within max_lag %s of its last known WAL position (%s); not promoting: the database is unavailable until %s is back",
			c.name(old), scenario.Size(maxLag), strings.Join(behind, "; "), c.name(old))
	}
	return -1, fmt.Errorf("no running standby of %s to promote", c.name(old))
}

// Restart starts server m again, the driver having checked it started
// once: the primary (no failover happened) and a standby of the current
// primary on their data; an old primary, or a standby of one, rebuilt as
// a standby of the current primary. A sync replica is then named
// synchronous again. A running server is left alone.
func (c *Cluster) Restart(ctx context.Context, m int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv.Running(m) {
		return nil
	}
	t0 := time.Now()
	if m == c.primary || (c.following(m, c.primary) && !c.fenced[m]) {
		if err := c.srv.Restart(ctx, m); err != nil {
			return fmt.Errorf("restart database %s: %w", c.name(m), err)
		}
		c.log("database %s restarted in %s", c.name(m), time.Since(t0).Truncate(time.Millisecond))
	} else {
		c.log("database %s: rebuilding as a standby of %s (it was %s)", c.name(m), c.name(c.primary), c.roleOf(m))
		if err := c.standby(ctx, m); err != nil {
			return err
		}
	}
	return c.syncStandbys(ctx)
}

func (c *Cluster) roleOf(m int) string {
	if c.fenced[m] {
		return "a primary, fenced"
	}
	if p, ok := c.follows[m]; ok {
		return "a standby of " + c.name(p)
	}
	return "not streaming"
}

// Stop stops the HA manager, if there is one, and waits for it.
func (c *Cluster) Stop() {
	if c.stop == nil {
		return
	}
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}
