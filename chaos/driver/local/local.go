// Package local is the driver that runs a topology on this machine: each
// broker a child process, each site its own loopback addresses
// (127.0.<site index+1>.<node index+1>: on Linux all of 127/8 is
// loopback), each disk a directory under the run folder (a size-limited
// tmpfs when the disk has a size and we are root), and every link — client
// to broker, broker to broker — through an in-process toxiproxy, so faults
// can cut or slow it.
//
// A killed harness leaves nothing behind for long: brokers get SIGKILL
// when the harness dies (Linux parent-death signal), and every driver
// records its processes and mounts in a state file under Options.StateDir
// that Reap, run by the next harness, uses to kill and unmount what is
// left.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"

	"github.com/lossbench/lossbench/chaos/peers"
)

// Options configure a local driver.
type Options struct {
	// Dir is the run folder: node logs go to Dir/logs, disks to
	// Dir/disks, node working folders to Dir/nodes.
	Dir string
	// StateDir holds the state files Reap reads; default Dir. Give every
	// run the same one (the --out folder) so a run finds the left-overs
	// of the one before.
	StateDir string
	// BrokerBin is the refbroker executable for nodes of kind refbroker.
	BrokerBin string
	// NATSServerBin is the nats-server executable for nodes of kind nats
	// (Open finds or builds it: peers.NATSServer).
	NATSServerBin string
	// ClientSite is the site the clients run in; "" means outside every
	// site: they reach every node.
	ClientSite string
	// ReadyTimeout bounds the wait for a started node to be ready.
	// Default 30s.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	// Default 10s.
	StopTimeout time.Duration
	// Log, if set, gets one line per action (start, kill, cut...).
	Log func(format string, args ...any)
	// PowerCutNodes are the nodes whose data folder is served through
	// lazyfs (needs FUSE as root), so that PowerCut drops what they never
	// synced: the runner names the targets of the plan's power-cut
	// faults. The driver never reads the plan back.
	PowerCutNodes []string
	// FaultFSNodes are more nodes served through lazyfs: those a disk
	// fault (disk-error, disk-stall) may hit (DiskFaulter).
	FaultFSNodes []string
	// Writeback is the writeback model of the lazyfs data folders:
	// scenario.WritebackHost ("" too: this machine's settings) or
	// scenario.WritebackNone.
	Writeback string
}

// ClientsEnd is the name of the clients' end of links when the clients run
// outside every site.
const ClientsEnd = "clients"

// Driver is the local driver. Its methods are safe for concurrent use.
type Driver struct {
	opt   Options
	topo  scenario.Topology
	nodes map[string]*node
	order []string // node names in topology order
	disks map[string]*disk
	px    *proxies.Set
	state *stateFile
	notes []string
	// lazyErr says why no node could be put on lazyfs.
	lazyErr error
	// writeback describes the lazyfs writeback model, "" with no lazyfs.
	writeback string
	// faulter is the driver.DiskFaulter, on the views faultFS finds.
	faulter

	exitMu sync.Mutex
	exits  []driver.Exit // how node processes ended
	dbs    *dbState      // database servers (databases.go)
	// rabbit is the rabbitmq cluster (rabbitmq.go), nil unless two or
	// more rabbitmq nodes; rabbitMu guards its port mapper.
	rabbit   *rabbitCluster
	rabbitMu sync.Mutex

	closed  bool
	closeMu sync.Mutex
}

var _ driver.Driver = (*Driver)(nil)
var _ driver.Disks = (*Driver)(nil)
var _ driver.Links = (*Driver)(nil)
var _ driver.ExitReporter = (*Driver)(nil)
var _ driver.ArgsStarter = (*Driver)(nil)

// New lays out topo: addresses, disks, node folders and proxies. It starts
// no broker (see Start, StartAll). On error it returns the partial driver,
// which the caller must Close.
func New(topo scenario.Topology, opt Options) (*Driver, error) {
	if opt.Dir == "" {
		return nil, errors.New("local: Options.Dir is required")
	}
	if opt.StateDir == "" {
		opt.StateDir = opt.Dir
	}
	if opt.ReadyTimeout <= 0 {
		opt.ReadyTimeout = 30 * time.Second
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = 10 * time.Second
	}
	if opt.Log == nil {
		opt.Log = func(string, ...any) {}
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	opt.Dir = dir
	for _, sub := range []string{"logs", "disks", "nodes"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
	}
	d := &Driver{
		opt: opt, topo: topo,
		nodes: map[string]*node{},
		disks: map[string]*disk{},
		px:    proxies.New("local", opt.Log),
	}
	d.faulter = faulter{Name: "local", Find: d.faultFS, Log: opt.Log}
	d.state, err = newStateFile(opt.StateDir, dir)
	if err != nil {
		return d, err
	}
	if err := d.layoutNodes(); err != nil {
		return d, err
	}
	if err := d.layoutDisks(); err != nil {
		return d, err
	}
	if err := d.layoutLinks(); err != nil {
		return d, err
	}
	if err := d.layoutDatabases(); err != nil {
		return d, err
	}
	if err := d.layoutLazyFS(); err != nil {
		return d, err
	}
	return d, nil
}

// SiteIP is the loopback address of node index n (from 0) in site index s
// (from 0): 127.0.s+1.n+1.
func SiteIP(s, n int) string {
	return "127.0." + strconv.Itoa(s+1) + "." + strconv.Itoa(n+1)
}

func (d *Driver) layoutNodes() error {
	siteIdx := map[string]int{}
	for i, s := range d.topo.Sites {
		siteIdx[s.Name] = i
	}
	perSite := map[string]int{}
	for _, sn := range d.topo.Nodes {
		si, ok := siteIdx[sn.Site]
		if !ok {
			return fmt.Errorf("local: node %s: site %q: %w", sn.Name, sn.Site, driver.ErrUnknown)
		}
		if perSite[sn.Site] >= 254 || si >= 254 {
			return fmt.Errorf("local: node %s: more than 254 sites or nodes in a site", sn.Name)
		}
		ip := SiteIP(si, perSite[sn.Site])
		perSite[sn.Site]++
		n := &node{spec: sn, ip: ip, d: d,
			dir:     filepath.Join(d.opt.Dir, "nodes", sn.Name),
			logPath: filepath.Join(d.opt.Dir, "logs", sn.Name+".log")}
		d.nodes[sn.Name] = n // Close closes its sockets if the layout fails
		bind := n.pickPorts
		if sn.Broker.Kind == scenario.RefBroker {
			bind = n.bindSockets
		}
		if err := bind(); err != nil {
			return err
		}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return fmt.Errorf("local: %w", err)
		}
		n.dataDir = filepath.Join(n.dir, "data")
		if sn.Broker.Kind == scenario.NATS && natsNodes(d.topo) > 1 {
			// Routes come in on the replication address, so that the
			// replication links' proxies carry them (writeConfig).
			n.cluster = n.repl
		}
		d.order = append(d.order, sn.Name)
	}
	return d.layoutRabbitMQ()
}

func (d *Driver) node(name string) (*node, error) {
	n, ok := d.nodes[name]
	if !ok {
		return nil, fmt.Errorf("local: node %q: %w", name, driver.ErrUnknown)
	}
	return n, nil
}

// Nodes returns the node names in topology order.
func (d *Driver) Nodes() []string { return append([]string(nil), d.order...) }

// StartAll starts every node, in topology order.
func (d *Driver) StartAll(ctx context.Context) error {
	for _, name := range d.order {
		if err := d.Start(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// ClientAddr is the proxy address clients use to reach node.
func (d *Driver) ClientAddr(name string) (string, error) {
	n, err := d.node(name)
	if err != nil {
		return "", err
	}
	if addr, ok := d.px.ClientListen(name); ok {
		return addr, nil
	}
	return "", fmt.Errorf("local: clients in site %q have no link to node %s (site %s)",
		d.clientsEnd(), name, n.spec.Site)
}

// BrokerAddr is node's own STOMP address, bypassing the proxies (for
// tests and diagnostics).
func (d *Driver) BrokerAddr(name string) (string, error) {
	n, err := d.node(name)
	if err != nil {
		return "", err
	}
	return n.listen, nil
}

// LogPath is the file node's output goes to.
func (d *Driver) LogPath(name string) (string, error) {
	n, err := d.node(name)
	if err != nil {
		return "", err
	}
	return n.logPath, nil
}

// Info describes the driver for reports.
func (d *Driver) Info() driver.Info {
	in := driver.Info{Name: "local", Brokers: map[string][]string{}, Notes: append([]string(nil), d.notes...), Writeback: d.writeback}
	for name, n := range d.nodes {
		in.Brokers[name] = n.argv()
	}
	return in
}

// Close stops every node (SIGTERM, SIGKILL after 3s), stops the proxies,
// unmounts the lazyfs data folders and the tmpfs disks and removes the
// state file.
func (d *Driver) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	var emu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range d.nodes {
		wg.Add(1)
		go func(n *node) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.stop(ctx, 3*time.Second); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	for _, n := range d.nodes {
		n.closeSockets()
	}
	if err := d.stopEPMD(); err != nil {
		errs = append(errs, err)
	}
	d.px.Close()
	if err := d.closeDatabases(); err != nil {
		errs = append(errs, err)
	}
	if err := d.unmountLazy(); err != nil {
		errs = append(errs, err)
	}
	for _, dk := range d.disks {
		if err := dk.unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.state != nil {
		if err := d.state.remove(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Open is the local driver's driver.Factory: it first removes what runs
// killed earlier left under cfg.StateDir (Reap), logging each thing it
// removed, then lays out cfg.Topology (New).
func Open(ctx context.Context, cfg driver.Config) (driver.Driver, error) {
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.StateDir != "" {
		did, err := Reap(cfg.StateDir)
		for _, line := range did {
			logf("%s", line)
		}
		if err != nil {
			logf("warning: left-overs of an earlier run: %v", err)
		}
	}
	for _, name := range cfg.WipeDatabases {
		db, _ := driver.WipedIn(cfg.Topology, name) // none: no replicas
		if err := wipeUnsupported(name, db); err != nil {
			return nil, err
		}
	}
	for _, sn := range cfg.Topology.Nodes {
		var err error
		switch sn.Broker.Kind {
		case scenario.RabbitMQ:
			err = peers.RabbitMQAvailable()
		case scenario.ActiveMQ:
			err = peers.ActiveMQAvailable()
			if sn.Broker.Store == scenario.ActiveMQJDBC {
				err = peers.ActiveMQJDBCAvailable()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
	}
	var natsBin string
	if natsNodes(cfg.Topology) > 0 {
		var err error
		if natsBin, err = peers.NATSServer(ctx); err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
	}
	d, err := New(cfg.Topology, Options{Dir: cfg.Dir, StateDir: cfg.StateDir, BrokerBin: cfg.BrokerBin, NATSServerBin: natsBin,
		ClientSite: cfg.ClientSite, PowerCutNodes: cfg.PowerCutNodes,
		FaultFSNodes: cfg.FaultFSNodes, Writeback: cfg.Writeback, Log: cfg.Log})
	if d == nil {
		return nil, err
	}
	return d, err
}

// natsNodes counts the topology's nodes of kind nats.
func natsNodes(topo scenario.Topology) int {
	n := 0
	for _, sn := range topo.Nodes {
		if sn.Broker.Kind == scenario.NATS {
			n++
		}
	}
	return n
}
