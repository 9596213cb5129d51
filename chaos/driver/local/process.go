package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// node is one broker node and its current process, if any.
type node struct {
	d       *Driver
	spec    scenario.Node
	ip      string
	listen  string // the broker's own STOMP address
	admin   string // the broker's admin HTTP address (nats: monitoring)
	cluster string // a nats node's route address in a cluster (its repl), or ""
	repl    string // the node's replication address ({repl})
	// epmdPort and distPort are a rabbitmq node's Erlang port mapper and
	// distribution ports.
	epmdPort, distPort int
	// joined: a rabbitmq node of a cluster has joined it (rabbitCluster).
	joined  bool
	dir     string // working folder
	dataDir string // {data}
	// sharedData: dataDir is on a disk shared with other nodes, which
	// losing this node leaves alone.
	sharedData bool
	logPath    string
	// lazy serves the data folder through lazyfs from backing, for
	// PowerCut; nil on a plain folder.
	lazy    *lazyfs.FS
	backing string
	// extra are arguments added to the current start (StartWithArgs).
	extra []string
	// moved names the spare that took this node's disks (MoveDisks): the
	// node has none left and does not start again.
	moved string
	// wasReady: the node has been ready once, so its addresses may be
	// known beyond the links (canRepick).
	wasReady bool
	// socks are a refbroker node's listen, admin and replication sockets,
	// which the driver holds for the run and every process inherits
	// (ports.go); nil for brokers that bind their own ports. Set at
	// layout, then only read.
	socks []*os.File

	mu   sync.Mutex // guards proc
	proc *proc
}

// proc is one run of a node's broker.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
	// ended: the driver told the process to end (SIGKILL, SIGTERM).
	ended atomic.Bool
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// env is where node n's broker finds what it needs on this machine.
func (n *node) env() driver.NodeEnv {
	e := driver.NodeEnv{Bin: n.d.opt.BrokerBin, Listen: n.listen, Admin: n.admin, Data: n.dataDir,
		DSN: n.dsn(n.spec.Broker.Database), DSNs: n.dsns(), Disks: map[string]string{}, Peers: map[string]string{},
		Repl: n.repl, ReplPeers: map[string]string{}}
	n.inheritedEnv(&e)
	for name, dk := range n.d.disks {
		e.Disks[name] = dk.path
	}
	for _, l := range n.d.px.Links() {
		if l.FromNode == n.spec.Name {
			if l.Port == "repl" {
				e.ReplPeers[l.ToNode] = l.Listen
			} else {
				e.Peers[l.ToNode] = l.Listen
			}
		}
	}
	return e
}

// argv is the node's broker command line, with the extra arguments of
// its current start (StartWithArgs).
func (n *node) argv() []string {
	switch n.spec.Broker.Kind {
	case scenario.RabbitMQ:
		return append(n.rabbitmq().Argv(), n.extra...)
	case scenario.ActiveMQ:
		a, _ := n.activemq() // the command line does not name the database
		return append(a.Argv(), n.extra...)
	case scenario.NATS:
	default:
		return append(driver.BrokerArgv(n.spec, n.d.topo, n.env()), n.extra...)
	}
	argv := []string{n.d.opt.NATSServerBin, "-c", n.natsConf()}
	argv = append(argv, n.spec.Broker.Argv(driver.Vars(n.spec, n.env()))...)
	return append(argv, n.extra...)
}

// StartWithArgs is Start with args appended to the node's broker command
// line, for this start only.
func (d *Driver) StartWithArgs(ctx context.Context, name string, args []string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.extra = args
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.extra = nil
		n.mu.Unlock()
	}()
	return d.Start(ctx, name)
}

// natsConf is where a nats node's configuration file goes.
func (n *node) natsConf() string { return filepath.Join(n.dir, "nats.conf") }

// activemq is an activemq node's broker settings: with store jdbc, its
// database through the node's link to it (the JDBC URL is empty until
// the database server runs).
func (n *node) activemq() (peers.ActiveMQNode, error) {
	a := peers.ActiveMQNode{Listen: n.listen, Dir: n.dir, Data: n.dataDir, Sync: n.spec.Broker.Fsync}
	if n.spec.Broker.Store != scenario.ActiveMQJDBC {
		return a, nil
	}
	dsn := n.dsn(n.spec.Broker.Database)
	if dsn == "" {
		return a, fmt.Errorf("local: %s: database %q not running", n.spec.Name, n.spec.Broker.Database)
	}
	var err error
	a.JDBCURL, a.JDBCUser, err = peers.JDBCPostgres(dsn)
	return a, err
}

// writeConfig writes a generated broker configuration (nats, rabbitmq,
// activemq) before a start; other kinds have none.
func (n *node) writeConfig() error {
	switch n.spec.Broker.Kind {
	case scenario.RabbitMQ:
		return n.rabbitmq().Write()
	case scenario.ActiveMQ:
		a, err := n.activemq()
		if err != nil {
			return err
		}
		return a.Write()
	case scenario.NATS:
	default:
		return nil
	}
	nn := peers.NATSNode{Name: n.spec.Name, Listen: n.listen, Monitor: n.admin, Cluster: n.cluster,
		Data: n.dataDir, Sync: n.spec.Broker.Fsync}
	if n.cluster != "" {
		// Each route goes through the proxy of the link from this node
		// to the other (its replication link), so link faults between
		// sites apply between the servers; a server whose site does not
		// reach another's has no route to it.
		repl := n.env().ReplPeers
		for _, name := range n.d.order {
			if o := n.d.nodes[name]; o != n && o.cluster != "" && repl[name] != "" {
				nn.Routes = append(nn.Routes, repl[name])
			}
		}
	}
	return nn.WriteConfig(n.natsConf())
}

func (n *node) current() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return nil
	}
	return n.proc
}

// Running reports whether node's process is alive.
func (d *Driver) Running(name string) bool {
	n, err := d.node(name)
	if err != nil {
		return false
	}
	return n.current() != nil
}

// Start starts node and waits until it is ready: refbroker's /readyz
// answers 200 (or 503 saying "standby": a lease standby is up and takes
// over when the master goes), or another broker's STOMP port accepts a
// connection. The topology's database servers start before the first node.
// A node whose broker binds its own ports (not refbroker, whose sockets
// the driver holds) and finds one taken on its first start is started
// again on new ones, a few times (movePorts).
func (d *Driver) Start(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	// Databases start before the first node that could need them.
	if err := d.startDatabases(ctx); err != nil {
		return err
	}
	if n.spec.Broker.Kind == scenario.RabbitMQ && d.rabbit != nil {
		if err := d.startEPMD(ctx); err != nil {
			return err
		}
	}
	for retry := 1; ; retry++ {
		offset := osutil.Size(n.logPath)
		p, err := n.start()
		if err != nil {
			return err
		}
		d.opt.Log("start %s (pid %d) on %s", name, p.pid, n.listen)
		err = n.waitReady(ctx, p)
		if err == nil {
			n.wasReady = true
			return d.joinRabbitMQ(ctx, n, p)
		}
		if retry > portRetries || !n.canRepick() || !p.exited() || !osutil.SaysAddrInUse(n.logPath, offset) {
			return err
		}
		d.forgetExit(name)
		if err := d.movePorts(n); err != nil {
			return err
		}
	}
}

func (n *node) start() (*proc, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.exited() {
		return nil, fmt.Errorf("local: start %s: already running (pid %d)", n.spec.Name, n.proc.pid)
	}
	if n.moved != "" {
		return nil, fmt.Errorf("local: start %s: the machine is lost and its disks moved to %s", n.spec.Name, n.moved)
	}
	if n.backing != "" {
		// A wiped disk took the backing folder; the mount serves it by
		// path and works again once it exists.
		if err := os.MkdirAll(n.backing, 0o755); err != nil {
			return nil, fmt.Errorf("local: start %s: %w", n.spec.Name, err)
		}
	}
	if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("local: start %s: %w", n.spec.Name, err)
	}
	if err := n.writeConfig(); err != nil {
		return nil, fmt.Errorf("local: start %s: %w", n.spec.Name, err)
	}
	argv := n.argv()
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("local: start %s: empty command", n.spec.Name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("local: start %s: %w", n.spec.Name, err)
	}
	fmt.Fprintf(logf, "=== lossbench: %s start: %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = n.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = n.extraFiles()
	cmd.Env = os.Environ()
	vars := driver.Vars(n.spec, n.env())
	if n.spec.Broker.Kind == scenario.RabbitMQ {
		cmd.Env = append(cmd.Env, n.rabbitmq().Env()...)
	}
	for k, v := range n.spec.Broker.Env {
		cmd.Env = append(cmd.Env, k+"="+scenario.Expand(v, vars))
	}
	// Own process group, so signals reach the broker's children too and a
	// Ctrl-C on the terminal reaches only the harness, which then cleans up;
	// the parent-death signal kills the broker if the harness dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("local: start %s: %w", n.spec.Name, err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	n.proc = p
	n.d.state.addProc(n.spec.Name, p.pid)
	go func() {
		p.err = cmd.Wait()
		if err := n.stopSockets(); err != nil {
			fmt.Fprintf(logf, "=== lossbench: %s: %v\n", n.spec.Name, err)
		}
		n.d.recordExit(n.spec.Name, p)
		fmt.Fprintf(logf, "=== lossbench: %s exit: %v\n", time.Now().UTC().Format(time.RFC3339Nano), p.err)
		logf.Close()
		n.d.state.removeProc(n.spec.Name, p.pid)
		close(p.done)
	}()
	return p, nil
}

// recordExit notes how p, a process of node, ended.
func (d *Driver) recordExit(node string, p *proc) {
	e := driver.Exit{Node: node, Status: -1, At: time.Now().UTC(), ByHarness: p.ended.Load()}
	if st := p.cmd.ProcessState; st != nil {
		e.Status = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = ws.Signal().String()
		}
	}
	d.exitMu.Lock()
	d.exits = append(d.exits, e)
	d.exitMu.Unlock()
}

// Exits returns how every node process ended so far.
func (d *Driver) Exits() []driver.Exit {
	d.exitMu.Lock()
	defer d.exitMu.Unlock()
	return append([]driver.Exit(nil), d.exits...)
}

func (n *node) waitReady(ctx context.Context, p *proc) error {
	timeout := n.d.opt.ReadyTimeout
	if k := n.spec.Broker.Kind; k == scenario.RabbitMQ || k == scenario.ActiveMQ {
		// Erlang's or the JVM's boot, and RabbitMQ's recovery of its stores after a
		// crash, take 10-60 s on a loaded machine.
		timeout = max(timeout, 3*time.Minute)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.ready(ctx, client) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("local: start %s: exited before ready (%v); log %s:\n%s",
				n.spec.Name, p.err, n.logPath, osutil.Tail(n.logPath, 15))
		case <-ctx.Done():
			return fmt.Errorf("local: start %s: not ready after %s; log %s:\n%s",
				n.spec.Name, timeout, n.logPath, osutil.Tail(n.logPath, 15))
		case <-tick.C:
		}
	}
}

func (n *node) ready(ctx context.Context, client *http.Client) bool {
	switch n.spec.Broker.Kind {
	case scenario.NATS:
		return peers.NATSReady(ctx, client, n.admin)
	case scenario.RefBroker:
		return driver.RefBrokerReady(ctx, client, n.admin)
	}
	c, err := net.DialTimeout("tcp", n.listen, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// signal sends sig to the process group of node's running process.
func (n *node) signal(sig syscall.Signal) (*proc, error) {
	p := n.current()
	if p == nil {
		return nil, nil
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		p.ended.Store(true)
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return p, fmt.Errorf("local: %s %s: %w", sig, n.spec.Name, err)
	}
	return p, nil
}

func waitExit(ctx context.Context, p *proc) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends SIGKILL to node and waits for it to exit. A node that is not
// running is left as it is.
func (d *Driver) Kill(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	p, err := n.signal(syscall.SIGKILL)
	if err != nil || p == nil {
		return err
	}
	d.opt.Log("kill -9 %s (pid %d)", name, p.pid)
	if err := waitExit(ctx, p); err != nil {
		return fmt.Errorf("local: kill %s: %w", name, err)
	}
	return nil
}

// Stop sends SIGTERM and waits StopTimeout for node to exit, then kills it.
func (d *Driver) Stop(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	d.opt.Log("stop %s", name)
	return n.stop(ctx, d.opt.StopTimeout)
}

func (n *node) stop(ctx context.Context, grace time.Duration) error {
	p, err := n.signal(syscall.SIGTERM)
	if err != nil || p == nil {
		return err
	}
	// A stopped process keeps SIGTERM pending until it runs again.
	_ = syscall.Kill(-p.pid, syscall.SIGCONT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	if err := waitExit(ctx, p); err != nil {
		return fmt.Errorf("local: stop %s: %w", n.spec.Name, err)
	}
	return nil
}

// Pause sends SIGSTOP to node's process group.
func (d *Driver) Pause(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	p, err := n.signal(syscall.SIGSTOP)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("local: pause %s: not running", name)
	}
	// SIGSTOP is sent, not done: until the kernel has stopped every
	// thread, one may still accept and answer a client.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		stopped, err := osutil.Stopped(p.pid)
		if stopped {
			break
		}
		if err != nil || p.exited() {
			return fmt.Errorf("local: pause %s: pid %d gone (%v)", name, p.pid, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: pause %s: pid %d not stopped: %w", name, p.pid, ctx.Err())
		case <-tick.C:
		}
	}
	d.opt.Log("pause %s (pid %d)", name, p.pid)
	return nil
}

// Resume sends SIGCONT to node's process group.
func (d *Driver) Resume(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	p, err := n.signal(syscall.SIGCONT)
	if err != nil {
		return err
	}
	if p != nil {
		d.opt.Log("resume %s (pid %d)", name, p.pid)
	}
	return nil
}
