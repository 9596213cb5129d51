package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// DatabasesSubdir is the folder of the run folder that holds the database
// servers (one folder each); Reap finds a killed run's database processes
// by it.
const DatabasesSubdir = "databases"

// database is one database server of the topology (postgres or mariadb).
// The server itself listens on 127.0.0.1 (dbserver binds nothing else);
// each node that uses it reaches it through a proxy listening on the
// database's site address, on the link from the node's site, so link
// faults apply to the broker's database connection.
type database struct {
	spec scenario.Database
	// server is this server of spec: spec's own (the primary at the
	// start) or one of its replicas; cl is spec's cluster when it has
	// replicas.
	server scenario.DBServer
	cl     *cluster
	gal    *galera // spec's Galera cluster (a mariadb with replicas)
	ip     string  // the proxies' address in the database's site
	dir    string  // the server's folder, under Dir/databases
	name   string  // the scenario's database on the server
	// links are the proxies from nodes to the server, by node name; their
	// upstream is set when the server starts.
	links map[string]*proxies.Link

	mu  sync.Mutex // guards srv
	srv *dbserver.Server
}

// dbState is the driver's databases.
type dbState struct {
	byName   map[string]*database // by server name
	order    []string
	clusters map[string]*cluster // by database name
	galeras  map[string]*galera  // by database name
	startMu  sync.Mutex          // serialises startDatabases
	started  bool
}

var (
	_ driver.Databases     = (*Driver)(nil)
	_ driver.DatabaseWiper = (*Driver)(nil)
)

// layoutDatabases gives every server database an address in its site and a
// proxy from every node that names it; nothing starts yet.
func (d *Driver) layoutDatabases() error {
	d.dbs = &dbState{byName: map[string]*database{}, clusters: map[string]*cluster{}, galeras: map[string]*galera{}}
	siteIdx := map[string]int{}
	for i, s := range d.topo.Sites {
		siteIdx[s.Name] = i
	}
	perSite := map[string]int{}
	for _, spec := range d.topo.Databases {
		if spec.Kind == scenario.SQLite {
			continue
		}
		var (
			cl  *cluster
			gal *galera
		)
		switch {
		case len(spec.Replicas) == 0:
		case spec.Kind == scenario.Postgres:
			cl = &cluster{spec: spec}
			d.dbs.clusters[spec.Name] = cl
		case spec.Kind == scenario.MariaDB:
			gal = &galera{spec: spec}
			d.dbs.galeras[spec.Name] = gal
		default:
			return fmt.Errorf("local: database %s: replicas of a %s database: %w", spec.Name, spec.Kind, driver.ErrUnsupported)
		}
		for _, sv := range spec.Servers() {
			si, ok := siteIdx[sv.Site]
			if !ok {
				return fmt.Errorf("local: database %s: site %q: %w", sv.Name, sv.Site, driver.ErrUnknown)
			}
			// Nodes count up from .1; databases down from .250.
			ip := SiteIP(si, 249-perSite[sv.Site])
			perSite[sv.Site]++
			db := &database{spec: spec, server: sv, cl: cl, gal: gal, ip: ip, links: map[string]*proxies.Link{},
				dir: filepath.Join(d.opt.Dir, DatabasesSubdir, sv.Name), name: driver.DatabaseName(d.opt.Dir)}
			d.dbs.byName[sv.Name] = db
			d.dbs.order = append(d.dbs.order, sv.Name)
			if cl != nil {
				cl.members = append(cl.members, db)
			}
			if gal != nil {
				gal.members = append(gal.members, db)
			}
			for _, name := range d.order {
				n := d.nodes[name]
				if !slices.Contains(n.spec.Broker.DatabaseNames(), spec.Name) {
					continue
				}
				l, err := d.dbLink(name, n.spec.Site, db)
				if err != nil {
					return err
				}
				db.links[name] = l
			}
		}
		if cl != nil {
			if err := d.layoutReplication(cl); err != nil {
				return err
			}
		}
	}
	return nil
}

// dbLink adds the proxy from node (or database server) from, in site
// fromSite, to database server db; its upstream is set when the server
// has a port.
func (d *Driver) dbLink(from, fromSite string, db *database) (*proxies.Link, error) {
	if !d.linked(fromSite, db.server.Site) {
		return nil, fmt.Errorf("local: %s cannot reach database %s: no link between sites %s and %s",
			from, db.server.Name, fromSite, db.server.Site)
	}
	listen, err := osutil.FreeAddr(db.ip)
	if err != nil {
		return nil, err
	}
	l := &proxies.Link{Name: from + "->" + db.server.Name, FromSite: fromSite, FromNode: from,
		ToSite: db.server.Site, ToNode: db.server.Name, Listen: listen}
	if err := d.px.Add(l, ""); err != nil {
		return nil, err
	}
	return l, nil
}

// pointLinks sets the upstream of every proxy to database server db (the
// nodes', and the other servers' of its cluster) to its address.
func (d *Driver) pointLinks(db *database, addr string) error {
	for _, l := range d.px.Links() {
		if l.ToNode == db.server.Name {
			if err := d.px.SetUpstream(l, addr); err != nil {
				return err
			}
		}
	}
	return nil
}

// startDatabases starts every server database, once, before the first
// node: initdb or mariadb-install-db into its folder, the server, the
// scenario's database, then the proxies to it.
func (d *Driver) startDatabases(ctx context.Context) error {
	st := d.dbs
	if st == nil {
		return nil
	}
	st.startMu.Lock()
	defer st.startMu.Unlock()
	if st.started {
		return nil
	}
	for _, name := range st.order {
		db := st.byName[name]
		if db.cl != nil || db.gal != nil {
			continue
		}
		if err := d.startDatabase(ctx, db); err != nil {
			return err
		}
	}
	for _, spec := range d.topo.Databases {
		if cl := st.clusters[spec.Name]; cl != nil {
			if err := d.startCluster(ctx, cl); err != nil {
				return err
			}
		}
		if g := st.galeras[spec.Name]; g != nil {
			if err := d.startGalera(ctx, g); err != nil {
				return err
			}
		}
	}
	st.started = true
	return nil
}

// dbOptions are the dbserver options of server db.
func (d *Driver) dbOptions(db *database) []dbserver.Option {
	opts := []dbserver.Option{dbserver.WithLogf(func(f string, a ...any) { d.opt.Log(f, a...) })}
	if db.spec.Kind == scenario.Postgres {
		// A unix socket path is limited to 107 bytes, which a run folder
		// easily exceeds; brokers and dbserver use TCP only.
		opts = append(opts, dbserver.WithSetting("unix_socket_directories", ""))
	}
	if db.cl != nil {
		opts = append(opts, dbserver.WithReplication())
		if db.spec.RemoteApply() {
			// On every server: any may be promoted. Without a
			// synchronous standby it commits as "on" does.
			opts = append(opts, dbserver.WithSetting("synchronous_commit", "remote_apply"))
		}
	}
	return opts
}

func (d *Driver) startDatabase(ctx context.Context, db *database) error {
	opts := d.dbOptions(db)
	var (
		srv *dbserver.Server
		err error
	)
	t0 := time.Now()
	switch db.spec.Kind {
	case scenario.Postgres:
		srv, err = dbserver.StartPostgres(ctx, db.dir, opts...)
	case scenario.MariaDB:
		srv, err = dbserver.StartMariaDB(ctx, db.dir, opts...)
	default:
		return fmt.Errorf("local: database %s: kind %q: %w", db.spec.Name, db.spec.Kind, driver.ErrUnsupported)
	}
	if srv != nil {
		db.mu.Lock()
		db.srv = srv
		db.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("local: database %s: %w", db.spec.Name, err)
	}
	if err := srv.CreateDatabase(ctx, db.name); err != nil {
		return fmt.Errorf("local: database %s: create %s: %w", db.spec.Name, db.name, err)
	}
	if err := d.pointLinks(db, srv.Addr()); err != nil {
		return err
	}
	d.opt.Log("database %s (%s) ready on %s in %s, proxied on %s", db.server.Name, db.spec.Kind, srv.Addr(),
		time.Since(t0).Truncate(time.Millisecond), db.ip)
	return nil
}

// dsn is node n's data source name for server database name, through
// its proxy; "" when it has none or the server has not started. For a
// replicated database it names every server, each through its own proxy
// (cluster.dsn, galera.dsn).
func (n *node) dsn(name string) string {
	if n.d.dbs == nil {
		return ""
	}
	if cl := n.d.dbs.clusters[name]; cl != nil {
		return cl.dsn(n.spec.Name)
	}
	if g := n.d.dbs.galeras[name]; g != nil {
		return g.dsn(n.spec.Name, n.spec.Site)
	}
	db := n.d.dbs.byName[name]
	if db == nil {
		return ""
	}
	db.mu.Lock()
	srv := db.srv
	db.mu.Unlock()
	l := db.links[n.spec.Name]
	if srv == nil || l == nil {
		return ""
	}
	return strings.Replace(srv.DSN(db.name), srv.Addr(), l.Listen, 1)
}

// dsns are node n's data source names by server database name.
func (n *node) dsns() map[string]string {
	out := map[string]string{}
	for _, name := range n.spec.Broker.DatabaseNames() {
		if dsn := n.dsn(name); dsn != "" {
			out[name] = dsn
		}
	}
	return out
}

func (d *Driver) database(name string) (*database, *dbserver.Server, error) {
	if d.dbs != nil {
		if db, ok := d.dbs.byName[name]; ok {
			db.mu.Lock()
			defer db.mu.Unlock()
			if db.srv == nil {
				return db, nil, fmt.Errorf("local: database %q: not started", name)
			}
			return db, db.srv, nil
		}
	}
	return nil, nil, fmt.Errorf("local: database %q (postgres or mariadb): %w", name, driver.ErrUnknown)
}

// KillDB crashes database server name: SIGKILL to its whole process tree.
// Broker connections through the proxies break with it.
func (d *Driver) KillDB(ctx context.Context, name string) error {
	db, srv, err := d.database(name)
	if err != nil {
		return err
	}
	if db.cl != nil {
		db.cl.ha.Lock()
		defer db.cl.ha.Unlock()
	}
	if !srv.Running() {
		return nil
	}
	d.opt.Log("kill -9 database %s", name)
	return srv.Kill()
}

// WipeDB crashes database server name and destroys its data directory
// (db-data-lost); RestartDB starts it on a new, empty one. A server of a
// replicated PostgreSQL database is refused (wipeUnsupported).
func (d *Driver) WipeDB(ctx context.Context, name string) error {
	db, srv, err := d.database(name)
	if err != nil {
		return err
	}
	if err := wipeUnsupported(name, db.spec); err != nil {
		return err
	}
	d.opt.Log("kill -9 database %s and destroy its data", name)
	return srv.Wipe()
}

// wipeUnsupported is why db-data-lost on server name of database spec
// is refused (ErrUnsupported), nil when it is not: a server of a
// replicated PostgreSQL database would have to come back as a new
// standby of whichever is primary, which its restart does not do for a
// primary that was not failed over. Open refuses a run whose
// Config.WipeDatabases names one, so that it stops before it starts;
// WipeDB refuses it too, for a caller that did not declare it.
func wipeUnsupported(name string, spec scenario.Database) error {
	if len(spec.Replicas) == 0 || spec.Kind != scenario.Postgres {
		return nil
	}
	return fmt.Errorf("local: database %s: db-data-lost on a server of a replicated PostgreSQL database (it would have to come back as a new standby of whichever is primary): %w", name, driver.ErrUnsupported)
}

// RestartDB starts a killed database server again on its data and port
// and waits until it accepts connections; a running one is left alone.
// After WipeDB it starts empty, with the run's database created again.
func (d *Driver) RestartDB(ctx context.Context, name string) error {
	db, srv, err := d.database(name)
	if err != nil {
		return err
	}
	if db.cl != nil {
		return d.restartMember(ctx, db)
	}
	if srv.Running() {
		return nil
	}
	t0 := time.Now()
	if err := srv.Restart(ctx); err != nil {
		return fmt.Errorf("local: restart database %s: %w", name, err)
	}
	// A no-op unless the data was destroyed (on Galera, the cluster
	// brings it back with the node's state transfer).
	if db.gal == nil {
		if err := srv.CreateDatabase(ctx, db.name); err != nil {
			return fmt.Errorf("local: database %s: create %s: %w", name, db.name, err)
		}
	}
	d.opt.Log("database %s restarted in %s", name, time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// DatabaseRunning reports whether database server name runs.
func (d *Driver) DatabaseRunning(name string) bool {
	_, srv, err := d.database(name)
	return err == nil && srv.Running()
}

// closeDatabases stops every database server and removes its data (the
// log stays in the run folder).
func (d *Driver) closeDatabases() error {
	if d.dbs == nil {
		return nil
	}
	for _, cl := range d.dbs.clusters {
		cl.ha.Stop()
	}
	var errs []error
	for _, name := range d.dbs.order {
		db := d.dbs.byName[name]
		db.mu.Lock()
		srv := db.srv
		db.mu.Unlock()
		if srv == nil {
			continue
		}
		if err := srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("local: database %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// reapDatabases kills the database processes a killed run left: every
// process whose working folder is under runDir/databases (PostgreSQL's
// postmaster and backends work in their data folder, mariadbd in its
// datadir). It returns one line per process killed.
func reapDatabases(runDir string) []string {
	if runDir == "" {
		return nil
	}
	root := filepath.Join(runDir, DatabasesSubdir) + string(filepath.Separator)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var did []string
	for _, p := range dirs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join(p, "cwd"))
		if err != nil || !strings.HasPrefix(cwd+string(filepath.Separator), root) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			did = append(did, fmt.Sprintf("killed left-over database process %d in %s", pid, cwd))
		}
	}
	return did
}
