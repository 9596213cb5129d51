package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// DBReadyTimeout bounds the wait for a started database container to
// accept connections (its crash recovery after a kill included).
const DBReadyTimeout = 120 * time.Second

// database is one server database of the topology: a container of its
// kind's image on its site's network, its data on a named volume. Each
// node that uses it reaches it through a proxy on the node's site network
// gateway (the link node -> database), so link faults apply to the
// broker's database connection as on the local driver.
type database struct {
	spec   scenario.Database
	server scenario.DBServer // this server of spec (spec's own, or a replica)
	cl     *pgCluster        // spec's cluster when it has replicas (postgres)
	gal    *galera           // spec's cluster when it has replicas (mariadb)
	site   *site
	img    Image
	volume string
	name   string                   // the scenario's database on the server
	links  map[string]*proxies.Link // by node name

	mu sync.Mutex // guards the fields below
	id string     // container ID
	// data is the server's data folder in the container: the volume's
	// root, or a base backup in it (a standby).
	data    string
	addr    string // host:port on its site network, once started
	standby bool   // it starts in recovery
	past    string // output of the containers WipeDB removed
}

var (
	_ driver.Databases     = (*Driver)(nil)
	_ driver.DatabaseWiper = (*Driver)(nil)
)

// dbPort is the server port inside a database container of kind k.
func dbPort(k scenario.DatabaseKind) string {
	if k == scenario.Postgres {
		return postgresPort
	}
	return mariaPort
}

// databaseImageRef is the image database spec runs from: the
// scenario's (image:), else the one cfg.DatabaseImages names for its
// kind, else "" for the one made here.
func (d *Driver) databaseImageRef(spec scenario.Database) string {
	if spec.Image != "" {
		return spec.Image
	}
	return d.cfg.DatabaseImages[string(spec.Kind)]
}

// layoutDatabases creates every server database's volume and container
// (not started) and the proxies to it from the nodes that use it.
func (d *Driver) layoutDatabases(ctx context.Context) error {
	imgs := map[string]Image{} // by ref; "kind:" for the images made here
	for _, spec := range d.cfg.Topology.Databases {
		if spec.Kind == scenario.SQLite {
			continue
		}
		ref := d.databaseImageRef(spec)
		key := ref
		if key == "" {
			key = string(spec.Kind) + ":"
		}
		img, ok := imgs[key]
		if !ok {
			var err error
			if ref != "" {
				// A named image the engine lacks is the user's to
				// provide: an error, not a reason to run elsewhere.
				if img, err = NamedImage(ctx, d.cli, ref); err != nil {
					return fmt.Errorf("docker: database %s: %w", spec.Name, err)
				}
			} else if img, err = DatabaseImage(ctx, d.cli, spec.Kind); err != nil {
				// --driver auto then runs the scenario on local.
				return fmt.Errorf("docker: database %s: %w: %w", spec.Name, err, driver.ErrUnsupported)
			}
			imgs[key] = img
			if img.Build > 0 {
				d.log("built image %s (%s, %.1f MB) in %s", img.Ref, img.ID, float64(img.Size)/1e6, img.Build.Truncate(time.Millisecond))
			}
			d.notes = append(d.notes, fmt.Sprintf("image %s id %s size %d", img.Ref, img.ID, img.Size))
		}
		var cl *pgCluster
		var gal *galera
		switch {
		case len(spec.Replicas) == 0:
		case spec.Kind == scenario.MariaDB:
			gal = &galera{d: d, spec: spec}
			d.galeras[spec.Name] = gal
		default:
			cl = &pgCluster{d: d, spec: spec}
			d.clusters[spec.Name] = cl
		}
		for _, sv := range spec.Servers() {
			sst, ok := d.nets[sv.Site]
			if !ok {
				return fmt.Errorf("docker: database %s: site %q: %w", sv.Name, sv.Site, driver.ErrUnknown)
			}
			db := &database{spec: spec, server: sv, cl: cl, gal: gal, site: sst, img: img, volume: d.name("db-" + sv.Name),
				name: driver.DatabaseName(d.cfg.Dir), links: map[string]*proxies.Link{}, data: dbData(spec.Kind)}
			d.dbs[sv.Name] = db
			d.dbOrder = append(d.dbOrder, sv.Name)
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
				l, err := d.dbLink(name, n.spec.Site, n.site, db)
				if err != nil {
					return err
				}
				db.links[name] = l
			}
			if _, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: db.volume, Labels: d.labels("database", sv.Site, sv.Name)}); err != nil {
				return fmt.Errorf("docker: database %s: volume %s: %w", sv.Name, db.volume, err)
			}
			if gal != nil {
				continue // layoutGalera, once every member's ports are known
			}
			if err := d.createDatabase(ctx, db); err != nil {
				return err
			}
		}
		if cl != nil {
			if err := d.layoutReplication(cl); err != nil {
				return err
			}
		}
		if gal != nil {
			if err := d.layoutGalera(ctx, gal); err != nil {
				return err
			}
		}
	}
	return nil
}

// dbLink is a proxy, listening on from's network gateway, on the link
// from site fromSite (node or server fromName) to database server db.
func (d *Driver) dbLink(fromName, fromSite string, from *site, db *database) (*proxies.Link, error) {
	if fromSite != db.server.Site && !proxies.Linked(d.cfg.Topology, fromSite, db.server.Site) {
		return nil, fmt.Errorf("docker: %s cannot reach database %s: no link between sites %s and %s",
			fromName, db.server.Name, fromSite, db.server.Site)
	}
	listen, err := osutil.FreeAddr(from.gateway)
	if err != nil {
		return nil, err
	}
	l := &proxies.Link{Name: fromName + "->" + db.server.Name, FromSite: fromSite, FromNode: fromName,
		ToSite: db.server.Site, ToNode: db.server.Name, Listen: listen}
	if err := d.px.Add(l, ""); err != nil {
		return nil, err
	}
	return l, nil
}

// dbData is the data folder of a database container of kind k.
func dbData(k scenario.DatabaseKind) string {
	if k == scenario.Postgres {
		return postgresData
	}
	return mariaData
}

// createDatabase creates db's container, not started. The environment and
// arguments suit both the images made here and the official ones
// (postgres:15, mariadb:10.11), whose entrypoints take server flags as
// arguments: trust for the brokers' PostgreSQL role, the brokers' MariaDB
// account, and durable commits (fsync on, a COMMIT returns after its log
// is flushed), as dbserver runs them on the local driver.
func (d *Driver) createDatabase(ctx context.Context, db *database) error {
	var env map[string]string
	var cmd, hosts []string
	var files []tc.ContainerFile
	target := postgresData
	switch db.spec.Kind {
	case scenario.Postgres:
		// PGDATA is where the official image's entrypoint looks for a
		// data folder (PG_VERSION) and initialises one when there is
		// none: the volume's root, or a standby's base backup in it.
		db.mu.Lock()
		data := db.data
		db.mu.Unlock()
		env = map[string]string{"POSTGRES_HOST_AUTH_METHOD": "trust", "PGDATA": data}
		cmd = []string{"-c", "listen_addresses=*", "-c", "fsync=on", "-c", "synchronous_commit=on",
			"-c", "full_page_writes=on", "-c", "max_connections=200"}
		if db.cl != nil {
			cmd = append(cmd, dbserver.ReplicationFlags()...)
			if db.spec.RemoteApply() {
				// On every server: any may be promoted. A later -c
				// wins over synchronous_commit=on above.
				cmd = append(cmd, "-c", "synchronous_commit=remote_apply")
			}
			// Replication connections come from other containers (the
			// official image's pg_hba.conf lets them in from the
			// loopback only): every server of the cluster reads ours.
			cmd = append(cmd, "-c", "hba_file="+pgHBAFile)
			files = append(files, tc.ContainerFile{Reader: strings.NewReader(pgHBA), ContainerFilePath: pgHBAFile, FileMode: 0o644})
			// A later -D wins: a standby runs on its base backup.
			cmd = append(cmd, "-D", data)
		}
	case scenario.MariaDB:
		target = mariaData
		// The official image grants its MARIADB_USER only MARIADB_DATABASE.
		env = map[string]string{"MARIADB_USER": mariaUser, "MARIADB_PASSWORD": mariaPassword,
			"MARIADB_DATABASE": db.name, "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "1"}
		cmd = []string{"--bind-address=0.0.0.0", "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=1",
			"--max-connections=200", "--max-allowed-packet=64M", "--skip-name-resolve"}
		if db.gal != nil {
			cmd = append(cmd, db.gal.args(db)...)
			hosts = db.gal.hosts(db)
		}
	default:
		return fmt.Errorf("docker: database %s: kind %q: %w", db.spec.Name, db.spec.Kind, driver.ErrUnsupported)
	}
	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: db.volume, Target: target}}
	req := tc.GenericContainerRequest{ContainerRequest: tc.ContainerRequest{
		Image: db.img.Ref, Name: d.name("db-" + db.server.Name), Cmd: cmd, Env: env, Files: files,
		Labels: d.labels("database", db.server.Site, db.server.Name), Networks: []string{db.site.netName},
		NetworkAliases: map[string][]string{db.site.netName: {db.server.Name}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Mounts = mounts
			hc.ExtraHosts = hosts
			// PostgreSQL's parallel workers and MariaDB want more than
			// Docker's 64 MB default /dev/shm under load.
			hc.ShmSize = 256 << 20
		},
	}, Started: false}
	c, err := tc.GenericContainer(ctx, req)
	if err != nil {
		return fmt.Errorf("docker: database %s: create container from %s: %w", db.server.Name, db.img.Ref, err)
	}
	db.mu.Lock()
	db.id = c.GetContainerID()
	db.mu.Unlock()
	return nil
}

// pgHBAFile is where the servers of a replicated PostgreSQL database
// read pgHBA (-c hba_file), in their containers.
const pgHBAFile = "/etc/lossbench/pg_hba.conf"

// pgHBA lets in, without a password as POSTGRES_HOST_AUTH_METHOD=trust
// does, the brokers, the harness and the standbys (replication) from
// every address, and local connections (the official image's entrypoint
// sets a new server up through its socket).
const pgHBA = "local all all trust\nlocal replication all trust\nhost all all all trust\nhost replication all all trust\n"

// dsn is node n's data source name for server database name, through
// its proxy; "" when it has none.
func (n *node) dsn(name string) string {
	if cl := n.d.clusters[name]; cl != nil {
		return cl.dsn(n.spec.Name)
	}
	if g := n.d.galeras[name]; g != nil {
		return g.dsn(n.spec.Name, n.spec.Site)
	}
	db := n.d.dbs[name]
	if db == nil {
		return ""
	}
	l := db.links[n.spec.Name]
	if l == nil {
		return ""
	}
	return dsnAt(db.spec.Kind, l.Listen, db.name)
}

// dsns are node n's data source names of every server database it uses
// (Broker.Databases), by database name.
func (n *node) dsns() map[string]string {
	m := map[string]string{}
	for _, name := range n.spec.Broker.DatabaseNames() {
		if dsn := n.dsn(name); dsn != "" {
			m[name] = dsn
		}
	}
	return m
}

// dsnAt is the DSN of database name on a server of kind at addr, as the
// brokers' account: pgx's URL form, go-sql-driver/mysql's form.
func dsnAt(kind scenario.DatabaseKind, addr, name string) string {
	if kind == scenario.Postgres {
		return "postgres://postgres@" + addr + "/" + name + "?sslmode=disable"
	}
	return mariaUser + ":" + mariaPassword + "@tcp(" + addr + ")/" + name
}

// startDatabases starts every server database, once, before the first
// node.
func (d *Driver) startDatabases(ctx context.Context) error {
	d.dbMu.Lock()
	defer d.dbMu.Unlock()
	if d.dbStarted {
		return nil
	}
	for _, name := range d.dbOrder {
		if d.dbs[name].cl != nil || d.dbs[name].gal != nil {
			continue
		}
		if err := d.startDatabase(ctx, d.dbs[name]); err != nil {
			return err
		}
	}
	for _, spec := range d.cfg.Topology.Databases {
		if cl := d.clusters[spec.Name]; cl != nil {
			if err := cl.start(ctx); err != nil {
				return err
			}
		}
		if g := d.galeras[spec.Name]; g != nil {
			if err := g.start(ctx); err != nil {
				return err
			}
		}
	}
	d.dbStarted = true
	return nil
}

// startDatabase starts db's container, waits until the server accepts
// connections and has the scenario's database (created, from the
// harness, at the container's address), then points the proxies to it.
func (d *Driver) startDatabase(ctx context.Context, db *database) error {
	t0 := time.Now()
	name := db.server.Name
	if _, err := d.cli.ContainerStart(ctx, db.cid(), client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker: start database %s: %w\n%s", name, err, d.containerTail(ctx, db.cid()))
	}
	res, err := d.cli.ContainerInspect(ctx, db.cid(), client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("docker: database %s: %w", name, err)
	}
	ep := res.Container.NetworkSettings.Networks[db.site.netName]
	if ep == nil || !ep.IPAddress.IsValid() {
		return fmt.Errorf("docker: database %s: no address on network %s", name, db.site.netName)
	}
	addr := net.JoinHostPort(ep.IPAddress.String(), dbPort(db.spec.Kind))
	admin := dsnAt(db.spec.Kind, addr, "postgres")
	if db.spec.Kind == scenario.MariaDB {
		admin = dsnAt(db.spec.Kind, addr, "")
	}
	db.mu.Lock()
	standby := db.standby
	db.mu.Unlock()
	timeout := DBReadyTimeout
	if db.gal != nil {
		timeout = GaleraStart
		// Its peers reach it through the proxies to it: a joiner's
		// state transfer comes in through them before it accepts
		// clients.
		if err := db.gal.point(db, ep.IPAddress.String()); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(wctx, 5*time.Second)
		if standby {
			// Read-only: it has the database once it replays.
			_, err = dbserver.PGAdmin(admin).InRecovery(pctx)
		} else {
			err = dbserver.CreateDatabaseAt(pctx, dbserver.Kind(db.spec.Kind), admin, db.name)
		}
		pcancel()
		if err == nil {
			break
		}
		st, ierr := d.cli.ContainerInspect(ctx, db.cid(), client.ContainerInspectOptions{})
		if ierr == nil && st.Container.State != nil && !st.Container.State.Running {
			return fmt.Errorf("docker: database %s: its container (%s) exited (code %d) before it accepted connections; last log lines:\n%s",
				name, db.img.Ref, st.Container.State.ExitCode, d.containerTail(context.Background(), db.cid()))
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("docker: database %s: not ready after %s (last: %v); last log lines:\n%s",
				name, timeout, err, d.containerTail(context.Background(), db.cid()))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if db.gal != nil {
		if err := waitSynced(wctx, addr); err != nil {
			return fmt.Errorf("docker: database %s: %w; last log lines:\n%s", name, err, d.containerTail(context.Background(), db.cid()))
		}
	}
	db.mu.Lock()
	db.addr = addr
	db.mu.Unlock()
	for _, l := range db.proxiesTo() {
		if err := d.px.SetUpstream(l, addr); err != nil {
			return err
		}
	}
	d.log("database %s (%s, %s) ready on %s in %s", name, db.spec.Kind, db.img.Ref, addr, time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// cid is db's container ID.
func (db *database) cid() string {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.id
}

func (d *Driver) database(name string) (*database, error) {
	if db, ok := d.dbs[name]; ok {
		return db, nil
	}
	return nil, fmt.Errorf("docker: database %q (postgres or mariadb): %w", name, driver.ErrUnknown)
}

// dbRunning reports whether db's container runs.
func (d *Driver) dbRunning(ctx context.Context, db *database) (bool, error) {
	res, err := d.cli.ContainerInspect(ctx, db.cid(), client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("docker: database %s: %w", db.server.Name, err)
	}
	return res.Container.State != nil && res.Container.State.Running, nil
}

// DatabaseRunning reports whether database server name's container runs.
func (d *Driver) DatabaseRunning(name string) bool {
	db, err := d.database(name)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := d.dbRunning(ctx, db)
	return err == nil && ok
}

// KillDB crashes database server name: SIGKILL to its container, and
// waits for it to exit. Broker connections through the proxies break.
func (d *Driver) KillDB(ctx context.Context, name string) error {
	db, err := d.database(name)
	if err != nil {
		return err
	}
	if db.cl != nil {
		db.cl.ha.Lock()
		defer db.cl.ha.Unlock()
	}
	killed, err := d.killDB(ctx, db)
	if err != nil {
		return fmt.Errorf("docker: kill database %s: %w", name, err)
	}
	if !killed {
		return nil
	}
	d.log("kill -9 database %s", name)
	return nil
}

// killDB kills db's container (SIGKILL) and resets the proxies to it
// until it starts again: a crashed server's port refuses connections at
// once, as a killed process's does on local, where a vanished container
// address would leave each connection hanging until its timeout.
func (d *Driver) killDB(ctx context.Context, db *database) (bool, error) {
	killed, err := d.killContainer(ctx, db.cid())
	if err != nil {
		return false, err
	}
	for _, l := range db.proxiesTo() {
		if err := d.px.SetUpstream(l, ""); err != nil {
			return killed, err
		}
	}
	if db.gal != nil {
		return killed, db.gal.point(db, "")
	}
	return killed, nil
}

// proxiesTo are the proxies to db: the nodes', and its cluster's other
// servers'.
func (db *database) proxiesTo() []*proxies.Link {
	var ls []*proxies.Link
	for _, l := range db.links {
		ls = append(ls, l)
	}
	if db.cl != nil {
		for _, x := range db.cl.members {
			if l := db.cl.repl[x.server.Name][db.server.Name]; l != nil {
				ls = append(ls, l)
			}
		}
	}
	return ls
}

// RestartDB starts a killed database container again on its volume and
// waits until it accepts connections (after crash recovery); a running
// one is left alone. After WipeDB it starts empty, with the run's
// database created again.
func (d *Driver) RestartDB(ctx context.Context, name string) error {
	db, err := d.database(name)
	if err != nil {
		return err
	}
	if db.cl != nil {
		if err := db.cl.ha.Restart(ctx, slices.Index(db.cl.members, db)); err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		return nil
	}
	if db.gal != nil {
		return db.gal.restart(ctx, db)
	}
	if ok, err := d.dbRunning(ctx, db); err != nil || ok {
		return err
	}
	return d.startDatabase(ctx, db)
}

// WipeDB crashes database server name and destroys its data
// (db-data-lost), as the loss of its disk would: its container is killed
// (SIGKILL) and removed, its output kept for its log, and its volume
// removed and made anew, empty, with a new container, not started.
// RestartDB then starts it as a new server: on its first start the empty
// volume is filled as on a first run (the image made here: Docker copies
// in the data folder initialised when the image was built; an official
// image: its entrypoint initialises one from the POSTGRES_* or MARIADB_*
// environment), with the same accounts, and the run's database is
// created again, without tables. It needs nothing of the engine's host,
// so it works on a remote DOCKER_HOST too. A server of a replicated
// database is refused (wipeUnsupported).
func (d *Driver) WipeDB(ctx context.Context, name string) error {
	db, err := d.database(name)
	if err != nil {
		return err
	}
	if err := wipeUnsupported(name, db.spec); err != nil {
		return err
	}
	if _, err := d.killDB(ctx, db); err != nil {
		return fmt.Errorf("docker: database %s: kill: %w", name, err)
	}
	if id := db.cid(); id != "" {
		past := containerLogs(ctx, d.cli, id, "all") + "--- container " + id[:12] + " removed: its data lost (db-data-lost) ---\n"
		if _, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			return fmt.Errorf("docker: database %s: remove container: %w", name, err)
		}
		db.mu.Lock()
		db.past += past
		db.id, db.addr = "", ""
		db.mu.Unlock()
	}
	if _, err := d.cli.VolumeRemove(ctx, db.volume, client.VolumeRemoveOptions{}); err != nil {
		return fmt.Errorf("docker: database %s: remove volume %s: %w", name, db.volume, err)
	}
	if _, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: db.volume, Labels: d.labels("database", db.server.Site, name)}); err != nil {
		return fmt.Errorf("docker: database %s: volume %s: %w", name, db.volume, err)
	}
	if err := d.createDatabase(ctx, db); err != nil {
		return err
	}
	d.log("kill -9 database %s and destroy its data (volume %s removed and made anew, empty)", name, db.volume)
	return nil
}

// wipeUnsupported is why db-data-lost on server name of database spec
// is refused (ErrUnsupported), nil when it is not. New refuses a run
// whose Config.WipeDatabases names such a server, so that --driver auto
// runs it on local or it stops before it starts; WipeDB refuses it too,
// for a caller that did not declare it.
func wipeUnsupported(name string, spec scenario.Database) error {
	switch {
	case len(spec.Replicas) == 0:
		return nil
	case spec.Kind == scenario.Postgres:
		return fmt.Errorf("docker: database %s: db-data-lost on a server of a replicated PostgreSQL database (it would have to come back as a new standby of whichever is primary): %w", name, driver.ErrUnsupported)
	default:
		return fmt.Errorf("docker: database %s: db-data-lost on a Galera node (its container would be laid out anew, the first node bootstrapping a second cluster): %w", name, driver.ErrUnsupported)
	}
}

// containerTail is a container's last log lines.
func (d *Driver) containerTail(ctx context.Context, id string) string {
	return containerLogs(ctx, d.cli, id, "15")
}

// saveDatabaseLogs writes each database container's output to
// logs/db-NAME.log in the run folder.
func (d *Driver) saveDatabaseLogs(ctx context.Context) error {
	var errs []error
	for _, name := range d.dbOrder {
		db := d.dbs[name]
		id := db.cid()
		db.mu.Lock()
		past := db.past
		db.mu.Unlock()
		if id == "" && past == "" {
			continue
		}
		out := past
		if id != "" {
			out += containerLogs(ctx, d.cli, id, "all")
		}
		p := filepath.Join(d.cfg.Dir, "logs", "db-"+name+".log")
		errs = append(errs, os.WriteFile(p, []byte(out), 0o644))
	}
	return errors.Join(errs...)
}
