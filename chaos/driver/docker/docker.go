// Package docker is the driver that runs a topology in containers on a
// Docker engine (whatever DOCKER_HOST names, else the local socket),
// through testcontainers-go: each site a Docker network, each node a
// container of the refbroker image (FROM scratch, built here, never
// pulled) on its site's network, each disk a named volume. Every link
// (clients to nodes, node to node) goes through the same in-process
// toxiproxy the local driver uses (chaos/driver/internal/proxies): clients
// reach a node through a proxy on 127.0.0.1, and a node reaches a peer
// through a proxy listening on its site network's gateway address, so
// every link fault of the scenario format applies unchanged.
//
// Everything the driver makes carries labels: LabelRun, LabelScenario,
// LabelSite, LabelRole and LabelOwner (the harness's pid and start
// time). Close removes the run's containers, volumes and networks by
// label; Open first removes those of a harness that is gone (one killed
// with SIGKILL). Ryuk, testcontainers' reaper, stays disabled: it would
// need an image pulled from a registry.
package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Labels on every container, volume and network the driver makes.
const (
	LabelDriver   = "lossbench.driver" // always "docker": what Reap looks at
	LabelRun      = "lossbench.run"
	LabelScenario = "lossbench.scenario"
	LabelSite     = "lossbench.site"
	LabelRole     = "lossbench.role" // node, disk, database, network, image
	LabelNode     = "lossbench.node"
	// LabelOwner is "host/pid/start" of the harness that made it.
	LabelOwner = "lossbench.owner"
)

// Ports inside a node's container.
const (
	stompPort = "61613"
	adminPort = "8161"
	replPort  = "61617" // replication ({repl}, refbroker --replication-listen)
)

// ClientsEnd is the name of the clients' end of links when the clients run
// outside every site (as in the local driver).
const ClientsEnd = "clients"

// Driver is the docker driver. Its methods are safe for concurrent use.
type Driver struct {
	cfg   driver.Config
	cli   *client.Client
	img   Image
	owner string
	base  map[string]string // labels of everything
	nets  map[string]*site  // by site name
	nodes map[string]*node
	order []string
	disks map[string]*disk
	// holders are the holder containers of sized volumes, by volume name
	// (sized.go).
	holders map[string]string
	px      *proxies.Set

	dbs       map[string]*database  // server databases by server name
	clusters  map[string]*pgCluster // replicated PostgreSQL databases by name
	galeras   map[string]*galera    // MariaDB Galera clusters by name
	dbOrder   []string
	natsImg   Image          // the nats-server image, once a nats node needs it (peers.go)
	rabbitImg Image          // the rabbitmq image, once a rabbitmq node needs it (rabbitimage.go)
	amqImg    Image          // the activemq image, once an activemq node needs it (amqimage.go)
	rabbit    *rabbitCluster // two or more rabbitmq nodes' cluster, else nil (rabbitcluster.go)
	dbMu      sync.Mutex     // serialises startDatabases
	dbStarted bool

	notes     []string
	writeback string // the lazyfs writeback model, "" with no lazyfs (lazyfs.go)
	faulter          // the driver.DiskFaulter, on the views faultFS finds
	log       func(string, ...any)
	exits     *exits

	siteMu  sync.Mutex
	closeMu sync.Mutex
	closed  bool
}

type site struct {
	name, id, netName string
	gateway           string
	subnet            netip.Prefix // its containers' addresses
	down              int          // DisconnectSite calls not yet undone; guarded by Driver.siteMu
}

type disk struct {
	name, node, volume, target string
	size                       int64    // bytes of a size-limited disk (a tmpfs volume), else 0
	nodes                      []string // every node it is mounted in (scenario.Disk.Attached)
	shared                     bool     // several nodes share it: losing one leaves it alone
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Disks  = (*Driver)(nil)
	_ driver.Links  = (*Driver)(nil)

	_ driver.SiteNetworks = (*Driver)(nil)
)

func init() {
	// testcontainers prints a banner and each step; the harness reports
	// what matters itself.
	tclog.SetDefault(tclog.NewNoopLogger())
}

// Client connects to the engine DOCKER_HOST names (exactly that one:
// testcontainers' own lookup would fall back to the local socket when it
// does not answer), else testcontainers' default, and checks that it
// answers.
func Client(ctx context.Context) (*client.Client, error) {
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	host := os.Getenv("DOCKER_HOST")
	var cli *client.Client
	if host != "" {
		c, err := client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("docker: DOCKER_HOST=%q: %w", host, err)
		}
		cli = c
	} else {
		dc, err := tc.NewDockerClientWithOpts(ctx)
		if err != nil {
			return nil, fmt.Errorf("docker: no engine answers (DOCKER_HOST unset, default socket): %w", err)
		}
		cli = dc.Client
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker: no engine answers (DOCKER_HOST=%q): %w", host, err)
	}
	return cli, nil
}

// ImageDir is where the static refbroker binary is built for the image.
func ImageDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "lossbench", "images")
	}
	return filepath.Join(os.TempDir(), "lossbench-images")
}

// Probe says whether the driver can run here: an engine answers and the
// refbroker image builds, or, when image names one (--refbroker-image),
// the engine has that image. It is what --driver auto asks.
func Probe(ctx context.Context, image string) error {
	cli, err := Client(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if image != "" {
		_, err = NamedImage(ctx, cli, image)
		return err
	}
	_, err = RefBrokerImage(ctx, cli, ImageDir())
	return err
}

// owner identifies this harness process in LabelOwner.
func owner() string {
	host, _ := os.Hostname()
	start, _ := osutil.ProcStart(os.Getpid())
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatUint(start, 10)
}

// ownerGone reports whether the harness of an owner label is gone: on
// this host, its pid no longer runs with that start time. An owner on
// another host is never taken for gone.
func ownerGone(label string) bool {
	parts := strings.Split(label, "/")
	host, _ := os.Hostname()
	if len(parts) != 3 || parts[0] != host {
		return false
	}
	pid, err1 := strconv.Atoi(parts[1])
	start, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return !osutil.Alive(pid, start)
}

// Open is the docker driver's driver.Factory: it connects to the engine,
// removes what gone harnesses left (Reap), builds the refbroker image if
// missing and lays out cfg.Topology: networks, volumes, containers (not
// started) and proxies. On error it returns the partial driver, which
// the caller must Close: nothing it made is left behind.
func Open(ctx context.Context, cfg driver.Config) (driver.Driver, error) {
	d, err := New(ctx, cfg)
	if d == nil {
		return nil, err
	}
	return d, err
}

// New is Open returning the concrete driver.
func New(ctx context.Context, cfg driver.Config) (*Driver, error) {
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if cfg.RunID == "" {
		cfg.RunID = time.Now().UTC().Format("20060102-150405")
	}
	if cfg.Dir == "" {
		return nil, errors.New("docker: Config.Dir is required")
	}
	// Files of the run are bind-mounted into containers (a peer's
	// configuration), and the engine takes absolute paths only: `lossbench
	// run --out results` gives a relative one.
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("docker: run folder %s: %w", cfg.Dir, err)
	}
	cfg.Dir = abs
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	if unmet := cfg.Unmet((*Driver)(nil)); len(unmet) > 0 {
		return nil, fmt.Errorf("docker: the scenario needs %v, which the docker driver does not do yet: %w", unmet, driver.ErrUnsupported)
	}
	if err := checkPeers(cfg.Topology); err != nil {
		return nil, err
	}
	for _, db := range cfg.Topology.Databases {
		// --driver auto runs these on local.
		switch {
		case len(db.Replicas) == 0:
		case db.Kind != scenario.Postgres && db.Kind != scenario.MariaDB:
			return nil, fmt.Errorf("docker: database %s: replicas of a %s database are not run in containers: %w", db.Name, db.Kind, driver.ErrUnsupported)
		case db.Kind == scenario.MariaDB && (db.Image != "" || cfg.DatabaseImages[string(db.Kind)] != ""):
			return nil, fmt.Errorf("docker: database %s: a Galera cluster runs from the mariadb image made here, not a named one: %w", db.Name, driver.ErrUnsupported)
		}
	}
	for _, name := range cfg.WipeDatabases {
		// Refused here, not when the fault fires, so that --driver auto
		// runs the scenario on local (Galera) or it stops before it
		// starts (a replicated PostgreSQL server, refused there too).
		db, _ := driver.WipedIn(cfg.Topology, name) // none: no replicas
		if err := wipeUnsupported(name, db); err != nil {
			return nil, err
		}
	}
	if fs := driver.LazyFSNodes(cfg.PowerCutNodes, cfg.FaultFSNodes); len(fs) > 0 {
		// lazyfs runs in this process, on the engine's host.
		if err := lazyfs.Available(); err != nil {
			return nil, fmt.Errorf("docker: nodes %v: power cuts and disk faults serve the node's data through lazyfs (FUSE) on this machine: %v: %w", fs, err, driver.ErrUnsupported)
		}
	}
	cli, err := Client(ctx)
	if err != nil {
		return nil, err
	}
	did, err := Reap(ctx, cli)
	for _, line := range did {
		cfg.Log("%s", line)
	}
	if err != nil {
		cfg.Log("warning: left-overs of an earlier run: %v", err)
	}
	var img Image
	if cfg.BrokerImage != "" {
		img, err = NamedImage(ctx, cli, cfg.BrokerImage)
	} else {
		img, err = RefBrokerImage(ctx, cli, ImageDir())
	}
	if err != nil {
		cli.Close()
		return nil, err
	}
	if img.Build > 0 {
		cfg.Log("built image %s (%s, %.1f MB) in %s", img.Ref, img.ID, float64(img.Size)/1e6, img.Build.Truncate(time.Millisecond))
	}
	d := &Driver{cfg: cfg, cli: cli, img: img, owner: owner(), log: cfg.Log,
		nets: map[string]*site{}, nodes: map[string]*node{}, disks: map[string]*disk{}, holders: map[string]string{}, dbs: map[string]*database{}, clusters: map[string]*pgCluster{}, galeras: map[string]*galera{},
		px: proxies.New("docker", cfg.Log), exits: newExits()}
	d.faulter = faulter{Name: "docker", Find: d.faultFS, Log: d.log}
	d.base = map[string]string{LabelDriver: "docker", LabelRun: cfg.RunID, LabelScenario: cfg.Scenario, LabelOwner: d.owner}
	d.notes = append(d.notes, fmt.Sprintf("image %s id %s size %d", img.Ref, img.ID, img.Size))
	for _, step := range []func(context.Context) error{d.layoutSites, d.layoutRabbitMQ, d.layoutDisks, d.layoutNodes, d.layoutLazyFS, d.layoutLinks, d.layoutDatabases, d.createNodes} {
		if err := step(ctx); err != nil {
			return d, err
		}
	}
	return d, nil
}

// labels are the base labels plus role, site and node.
func (d *Driver) labels(role, site, node string) map[string]string {
	l := map[string]string{LabelRole: role}
	for k, v := range d.base {
		l[k] = v
	}
	if site != "" {
		l[LabelSite] = site
	}
	if node != "" {
		l[LabelNode] = node
	}
	return l
}

// name is a Docker object name for this run: lb-<run>-<scenario>-<what>.
func (d *Driver) name(what string) string {
	var b strings.Builder
	for _, r := range strings.ToLower("lb-" + d.cfg.RunID + "-" + d.cfg.Scenario + "-" + what) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

func (d *Driver) layoutSites(ctx context.Context) error {
	for _, s := range d.cfg.Topology.Sites {
		st := &site{name: s.Name, netName: d.name(s.Name)}
		res, err := d.cli.NetworkCreate(ctx, st.netName, client.NetworkCreateOptions{Driver: "bridge", Labels: d.labels("network", s.Name, "")})
		if err != nil {
			return fmt.Errorf("docker: network for site %s: %w", s.Name, err)
		}
		st.id = res.ID
		d.nets[s.Name] = st
		in, err := d.cli.NetworkInspect(ctx, st.id, client.NetworkInspectOptions{})
		if err != nil {
			return fmt.Errorf("docker: network for site %s: %w", s.Name, err)
		}
		for _, c := range in.Network.IPAM.Config {
			if c.Gateway.Is4() {
				st.gateway, st.subnet = c.Gateway.String(), c.Subnet
			}
		}
		if st.gateway == "" {
			return fmt.Errorf("docker: network %s of site %s has no IPv4 gateway", st.netName, s.Name)
		}
	}
	return nil
}

func (d *Driver) layoutDisks(ctx context.Context) error {
	for _, sd := range d.cfg.Topology.Disks {
		dk := &disk{name: sd.Name, node: sd.Node, volume: d.name(sd.Name), target: "/disks/" + sd.Name,
			nodes: sd.Attached(), shared: sd.Shared(), size: int64(sd.Size)}
		d.disks[sd.Name] = dk
		if err := d.volume(ctx, dk.volume, sd.Node); err != nil {
			return err
		}
	}
	return nil
}

// volume makes a labelled named volume: a tmpfs of its size for a sized
// disk's (sized.go).
func (d *Driver) volume(ctx context.Context, name, node string) error {
	for _, dk := range d.disks {
		if dk.volume == name && dk.size > 0 {
			return d.sizedVolume(ctx, name, node, dk.size)
		}
	}
	if _, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: d.labels("disk", d.siteOf(node), node)}); err != nil {
		return fmt.Errorf("docker: volume %s: %w", name, err)
	}
	return nil
}

// Reap removes every container, volume and network labelled by a docker
// driver whose harness is gone (killed before its Close). It returns one
// line per thing removed.
func Reap(ctx context.Context, cli *client.Client) ([]string, error) {
	f := make(client.Filters).Add("label", LabelDriver+"=docker")
	var did []string
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: reap: %w", err)
	}
	for _, c := range cs.Items {
		if !ownerGone(c.Labels[LabelOwner]) {
			continue
		}
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
			continue
		}
		did = append(did, fmt.Sprintf("removed left-over container %s (run %s)", strings.TrimPrefix(firstName(c.Names), "/"), c.Labels[LabelRun]))
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err == nil {
		var dirs []string
		for _, v := range vs.Items {
			if ownerGone(v.Labels[LabelOwner]) {
				dirs = append(dirs, v.Mountpoint)
			}
		}
		if len(dirs) > 0 { // the lazyfs mounts over them first
			unmounted, err := reapLazy(dirs)
			did = append(did, unmounted...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		for _, v := range vs.Items {
			if !ownerGone(v.Labels[LabelOwner]) {
				continue
			}
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				errs = append(errs, err)
				continue
			}
			did = append(did, fmt.Sprintf("removed left-over volume %s (run %s)", v.Name, v.Labels[LabelRun]))
		}
	} else {
		errs = append(errs, err)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err == nil {
		for _, n := range ns.Items {
			if !ownerGone(n.Labels[LabelOwner]) {
				continue
			}
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, err)
				continue
			}
			did = append(did, fmt.Sprintf("removed left-over network %s (run %s)", n.Name, n.Labels[LabelRun]))
		}
	} else {
		errs = append(errs, err)
	}
	return did, errors.Join(errs...)
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// Info describes the driver for reports: each node's command line inside
// its container, and the image with its ID in the notes.
func (d *Driver) Info() driver.Info {
	in := driver.Info{Name: "docker", Brokers: map[string][]string{}, Notes: append([]string(nil), d.notes...), Writeback: d.writeback}
	for name, n := range d.nodes {
		in.Brokers[name] = n.argv()
	}
	return in
}

// Image is the refbroker image the nodes run.
func (d *Driver) Image() Image { return d.img }

// Close removes the run's containers (with SIGKILL: the run is over),
// volumes and networks by label, and stops the proxies. It is safe to
// call more than once.
func (d *Driver) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for _, cl := range d.clusters {
		if cl.ha != nil {
			cl.ha.Stop()
		}
	}
	d.px.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range d.nodes {
		n.ending()
		n.saveLog(ctx)
	}
	_ = d.saveDatabaseLogs(ctx)
	err := removeRun(ctx, d.cli, d.cfg.RunID, d.owner)
	d.exits.wait(ctx)
	d.cli.Close()
	return errors.Join(err, d.unmountLazy())
}

// removeRun removes every container, volume and network of run made by
// owner.
func removeRun(ctx context.Context, cli *client.Client, run, owner string) error {
	f := make(client.Filters).Add("label", LabelRun+"="+run).Add("label", LabelOwner+"="+owner)
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("docker: cleanup: %w", err)
	}
	for _, c := range cs.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("docker: remove container %s: %w", firstName(c.Names), err))
		}
	}
	if vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err != nil {
		errs = append(errs, err)
	} else {
		for _, v := range vs.Items {
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				errs = append(errs, fmt.Errorf("docker: remove volume %s: %w", v.Name, err))
			}
		}
	}
	if ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err != nil {
		errs = append(errs, err)
	} else {
		for _, n := range ns.Items {
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("docker: remove network %s: %w", n.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
