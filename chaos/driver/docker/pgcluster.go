package docker

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver/internal/ha"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// pgCluster is a replicated PostgreSQL database (scenario replicas) in
// containers, one a server, run for the HA policy (ha.Cluster) as the
// local driver runs it over processes.
//
// Every server streams from its primary through a proxy on the link
// between their sites (repl), listening on the standby's site network
// gateway, so link faults between the sites apply to replication. A
// standby is a base backup (pg_basebackup in a one-shot container of the
// image, through that proxy) into a new folder of its volume; its
// container is made anew to run on it. The HA manager reaches each
// server at its container's address (the harness's witness, not a node).
type pgCluster struct {
	d       *Driver
	spec    scenario.Database
	members []*database // in spec.Servers() order
	// repl[x][y] is the proxy from server x to server y.
	repl map[string]map[string]*proxies.Link
	ha   *ha.Cluster
	// bin is the folder of the image's PostgreSQL programs, "" to find
	// them on the image's PATH (an official image).
	bin string
	// user runs pg_basebackup: the image's user, or postgres when that
	// is root (an official image, whose entrypoint drops to postgres).
	user string
}

var _ ha.Servers = (*pgCluster)(nil)

// layoutReplication adds a proxy from every server of cl to every other
// one whose site it reaches, and cl's HA policy.
func (d *Driver) layoutReplication(cl *pgCluster) error {
	cl.repl = map[string]map[string]*proxies.Link{}
	for _, x := range cl.members {
		cl.repl[x.server.Name] = map[string]*proxies.Link{}
		for _, y := range cl.members {
			if x == y || (x.server.Site != y.server.Site && !proxies.Linked(d.cfg.Topology, x.server.Site, y.server.Site)) {
				continue
			}
			l, err := d.dbLink(x.server.Name, x.server.Site, x.site, y)
			if err != nil {
				return err
			}
			cl.repl[x.server.Name][y.server.Name] = l
		}
	}
	cl.ha = ha.New(cl.spec, cl, d.log)
	return nil
}

// start starts the primary, then the HA policy makes the replicas
// standbys and starts the manager.
func (cl *pgCluster) start(ctx context.Context) error {
	res, err := cl.d.cli.ImageInspect(ctx, cl.members[0].img.Ref)
	if err != nil {
		return fmt.Errorf("docker: database %s: %w", cl.spec.Name, err)
	}
	if res.Config == nil {
		return fmt.Errorf("docker: database %s: image %s has no configuration", cl.spec.Name, cl.members[0].img.Ref)
	}
	cl.bin, cl.user = pgTools(res.Config.Entrypoint, res.Config.User)
	if err := cl.d.startDatabase(ctx, cl.members[0]); err != nil {
		return err
	}
	if err := cl.ha.Start(ctx); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	return nil
}

// pgTools is where a PostgreSQL image with entrypoint ep and user has
// pg_basebackup (bin, "" for its PATH) and the user to run it as. The
// image made here runs postgres itself as its entrypoint, as uid 999,
// and has no PATH to its programs; an image following the official
// one's interface runs docker-entrypoint.sh as root, which drops to the
// postgres user, and has the server's programs on its PATH.
func pgTools(ep []string, user string) (bin, runAs string) {
	if len(ep) > 0 && path.Base(ep[0]) == "postgres" {
		bin = path.Dir(ep[0]) + "/"
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		return bin, "postgres"
	}
	return bin, user
}

// dsn is the data source name of node's broker (ha.DSN): every server,
// each through the node's own proxy to it.
func (cl *pgCluster) dsn(node string) string {
	var links []map[string]*proxies.Link
	for _, m := range cl.members {
		links = append(links, m.links)
	}
	return ha.DSN(node, cl.members[0].name, links...)
}

func (cl *pgCluster) admin(m int) dbserver.PGAdmin {
	db := cl.members[m]
	db.mu.Lock()
	defer db.mu.Unlock()
	return dbserver.PGAdminAt(db.addr)
}

// Running implements ha.Servers.
func (cl *pgCluster) Running(m int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := cl.d.dbRunning(ctx, cl.members[m])
	return err == nil && ok
}

// WALPosition implements ha.Servers.
func (cl *pgCluster) WALPosition(ctx context.Context, m int) (uint64, error) {
	return cl.admin(m).WALPosition(ctx)
}

// Kill implements ha.Servers.
func (cl *pgCluster) Kill(m int) error {
	ctx, cancel := context.WithTimeout(context.Background(), ha.Step)
	defer cancel()
	_, err := cl.d.killDB(ctx, cl.members[m])
	return err
}

// Promote implements ha.Servers.
func (cl *pgCluster) Promote(ctx context.Context, m int) error {
	if err := cl.admin(m).Promote(ctx); err != nil {
		return err
	}
	db := cl.members[m]
	db.mu.Lock()
	db.standby = false
	db.mu.Unlock()
	return nil
}

// Restart implements ha.Servers.
func (cl *pgCluster) Restart(ctx context.Context, m int) error {
	return cl.d.startDatabase(ctx, cl.members[m])
}

// SetSynchronousStandbys implements ha.Servers.
func (cl *pgCluster) SetSynchronousStandbys(ctx context.Context, p int, names ...string) error {
	return cl.admin(p).SetSynchronousStandbys(ctx, names...)
}

// WaitStandby implements ha.Servers.
func (cl *pgCluster) WaitStandby(ctx context.Context, p int, name string, sync bool) error {
	return cl.admin(p).WaitStandby(ctx, name, sync)
}

// Standby implements ha.Servers: m's container is killed and removed, a
// base backup of p through the proxy from m's site to p's goes into a new
// folder of m's volume (pg_basebackup in a one-shot container, as uid
// 999, which owns the volume's root), and m's container is made anew on
// it and started.
func (cl *pgCluster) Standby(ctx context.Context, m, p int) (string, error) {
	d := cl.d
	r, pd := cl.members[m], cl.members[p]
	l := cl.repl[r.server.Name][pd.server.Name]
	if l == nil {
		return "", fmt.Errorf("docker: database %s cannot stream from %s: no link between sites %s and %s",
			r.server.Name, pd.server.Name, r.server.Site, pd.server.Site)
	}
	if id := r.cid(); id != "" {
		if _, err := d.killDB(ctx, r); err != nil {
			return "", err
		}
		if _, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
			return "", fmt.Errorf("docker: database %s: remove container: %w", r.server.Name, err)
		}
	}
	r.mu.Lock()
	n := 1
	if strings.HasPrefix(r.data, postgresData+"/standby-") {
		n, _ = strconv.Atoi(strings.TrimPrefix(r.data, postgresData+"/standby-"))
		n++
	}
	data := postgresData + "/standby-" + strconv.Itoa(n)
	r.mu.Unlock()
	host, port, _ := strings.Cut(l.Listen, ":")
	conninfo := fmt.Sprintf("host=%s port=%s user=postgres application_name=%s connect_timeout=5", host, port, r.server.Name)
	if err := d.runOnce(ctx, r, "basebackup", cl.user, []string{cl.bin + "pg_basebackup", "-D", data, "-d", conninfo,
		"--wal-method=stream", "--checkpoint=fast", "--write-recovery-conf"}); err != nil {
		return "", fmt.Errorf("docker: database %s: base backup of %s: %w", r.server.Name, pd.server.Name, err)
	}
	r.mu.Lock()
	r.data, r.standby, r.id = data, true, ""
	r.mu.Unlock()
	if err := d.createDatabase(ctx, r); err != nil {
		return "", err
	}
	if err := d.startDatabase(ctx, r); err != nil {
		return "", err
	}
	return l.Name, nil
}

// runOnce runs argv as user in a one-shot container of db's image, on
// db's site network with db's volume, and returns once it exited 0.
func (d *Driver) runOnce(ctx context.Context, db *database, what, user string, argv []string) error {
	c, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Image: db.img.Ref, Name: d.name(what + "-" + db.server.Name),
		Config: &container.Config{Entrypoint: argv, User: user, Labels: d.labels("database", db.server.Site, db.server.Name)},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(db.site.netName),
			Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: db.volume, Target: postgresData}}}})
	if err != nil {
		return err
	}
	defer d.cli.ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	wait := d.cli.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := d.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			return fmt.Errorf("%s exited %d:\n%s", path.Base(argv[0]), res.StatusCode, containerLogs(context.Background(), d.cli, c.ID, "15"))
		}
		return nil
	case err := <-wait.Error:
		return err
	}
}
