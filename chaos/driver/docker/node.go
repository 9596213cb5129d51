package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	tc "github.com/testcontainers/testcontainers-go"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// ReadyTimeout bounds the wait for a started node to be ready.
const ReadyTimeout = 60 * time.Second

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// node is one broker container.
type node struct {
	d      *Driver
	spec   scenario.Node
	site   *site
	img    Image  // the driver's refbroker image, or the node's own (scenario image:)
	id     string // container ID
	data   string // data folder inside the container
	dataVo string // the volume holding it when the node has no disk
	logP   string
	past   string // output of the containers a machine-lost replaced

	dataDisk string // the disk holding data ("" with dataVo)
	// lazy serves the data folder through lazyfs on the host, from
	// backing (a folder of the data's volume), for power cuts and disk
	// faults (lazyfs.go); nil when no such fault names the node.
	lazy    *lazyfs.FS
	backing string

	mu   sync.Mutex
	ip   string // the container's address on its site network while it runs
	life *life  // the container's current start (exits.go)
	// extra are the arguments the container was made with for one start
	// (StartWithArgs).
	extra []string
	// moved names the spare that took this node's disks (MoveDisks): the
	// node has none left and does not start again.
	moved string
	// joined: a rabbitmq node of a cluster has joined it (rabbitcluster.go).
	joined bool
}

func (d *Driver) node(name string) (*node, error) {
	n, ok := d.nodes[name]
	if !ok {
		return nil, fmt.Errorf("docker: node %q: %w", name, driver.ErrUnknown)
	}
	return n, nil
}

func (d *Driver) layoutNodes(ctx context.Context) error {
	for _, sn := range d.cfg.Topology.Nodes {
		st, ok := d.nets[sn.Site]
		if !ok {
			return fmt.Errorf("docker: node %s: site %q: %w", sn.Name, sn.Site, driver.ErrUnknown)
		}
		n := &node{d: d, spec: sn, site: st, img: d.img, data: "/data", logP: filepath.Join(d.cfg.Dir, "logs", sn.Name+".log")}
		if sn.Image != "" {
			img, err := NamedImage(ctx, d.cli, sn.Image)
			if err != nil {
				return fmt.Errorf("docker: node %s: %w", sn.Name, err)
			}
			n.img = img
			d.notes = append(d.notes, fmt.Sprintf("node %s: image %s id %s size %d", sn.Name, img.Ref, img.ID, img.Size))
		} else if img, ok, err := d.peerImage(ctx, sn.Broker.Kind); err != nil {
			return fmt.Errorf("docker: node %s: %w", sn.Name, err)
		} else if ok {
			n.img = img
		}
		// The node's data lives on its first disk that mirrors no other,
		// else on a volume of its own.
		for _, sd := range d.cfg.Topology.Disks {
			if slices.Contains(sd.Attached(), sn.Name) && sd.MirrorOf == "" {
				n.data = d.disks[sd.Name].target + "/data"
				n.dataDisk = sd.Name
				break
			}
		}
		if n.data == "/data" {
			n.dataVo = d.name(sn.Name + "-data")
			if err := d.volume(ctx, n.dataVo, sn.Name); err != nil {
				return err
			}
		}
		d.nodes[sn.Name] = n
		d.order = append(d.order, sn.Name)
	}
	return nil
}

func (d *Driver) clientsEnd() string {
	if d.cfg.ClientSite != "" {
		return d.cfg.ClientSite
	}
	return ClientsEnd
}

// layoutLinks makes the proxies: from the clients (on 127.0.0.1) to every
// node their site reaches, and from every node to every other node its
// site reaches (on the gateway address of the from-node's site network,
// which its container reaches). Upstreams are set when nodes start.
func (d *Driver) layoutLinks(ctx context.Context) error {
	for _, name := range d.order {
		to := d.nodes[name]
		if d.cfg.ClientSite == "" || proxies.Linked(d.cfg.Topology, d.cfg.ClientSite, to.spec.Site) {
			if err := d.addLink(d.clientsEnd(), "", "127.0.0.1", to); err != nil {
				return err
			}
		}
		for _, fromName := range d.order {
			from := d.nodes[fromName]
			if from == to || !proxies.Linked(d.cfg.Topology, from.spec.Site, to.spec.Site) {
				continue
			}
			if err := d.addLink(from.spec.Site, from.spec.Name, from.site.gateway, to); err != nil {
				return err
			}
			// Replication ({repl.NAME}) takes the same path between the
			// sites, so that link faults apply to it.
			if err := d.addReplLink(from, to); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Driver) addLink(fromSite, fromNode, ip string, to *node) error {
	listen, err := osutil.FreeAddr(ip)
	if err != nil {
		return err
	}
	from := fromNode
	if from == "" {
		from = fromSite
	}
	return d.px.Add(&proxies.Link{Name: from + "->" + to.spec.Name, FromSite: fromSite, FromNode: fromNode,
		ToSite: to.spec.Site, ToNode: to.spec.Name, Listen: listen}, "")
}

// addReplLink proxies from's connections to to's replication listener,
// on from's site network gateway like its link to to's STOMP listener.
func (d *Driver) addReplLink(from, to *node) error {
	listen, err := osutil.FreeAddr(from.site.gateway)
	if err != nil {
		return err
	}
	return d.px.Add(&proxies.Link{Name: from.spec.Name + "->" + to.spec.Name + "/repl", FromSite: from.spec.Site, FromNode: from.spec.Name,
		ToSite: to.spec.Site, ToNode: to.spec.Name, Listen: listen, Port: "repl"}, "")
}

// env is where node n's broker finds what it needs inside its container.
func (n *node) env() driver.NodeEnv {
	e := driver.NodeEnv{Bin: "/refbroker", Listen: "0.0.0.0:" + stompPort, Admin: "0.0.0.0:" + adminPort, Data: n.data,
		DSN: n.dsn(n.spec.Broker.Database), DSNs: n.dsns(), Disks: map[string]string{}, Peers: map[string]string{},
		Repl: "0.0.0.0:" + replPort, ReplPeers: map[string]string{}}
	for name, dk := range n.d.disks {
		e.Disks[name] = dk.target
	}
	for _, l := range n.d.px.Links() {
		switch {
		case l.FromNode != n.spec.Name:
		case l.Port == "repl":
			e.ReplPeers[l.ToNode] = l.Listen
		default:
			e.Peers[l.ToNode] = l.Listen
		}
	}
	return e
}

// argv is the node's broker command line, with the extra arguments its
// container was made with (StartWithArgs).
func (n *node) argv() []string {
	n.mu.Lock()
	extra := n.extra
	n.mu.Unlock()
	switch n.spec.Broker.Kind {
	case scenario.NATS:
		return append(n.natsArgv(), extra...)
	case scenario.RabbitMQ:
		return append(n.rabbitmq().Argv(), extra...)
	case scenario.ActiveMQ:
		return append(n.activemq().Argv(), extra...)
	}
	return append(driver.BrokerArgv(n.spec, n.d.cfg.Topology, n.env()), extra...)
}

// createNodes creates every node's container, not started, through
// testcontainers: its image, command line, labels, site network and
// volumes.
func (d *Driver) createNodes(ctx context.Context) error {
	for _, name := range d.order {
		if err := d.createNode(ctx, d.nodes[name]); err != nil {
			return err
		}
	}
	return nil
}

// createNode creates node n's container, not started.
func (d *Driver) createNode(ctx context.Context, n *node) error {
	name := n.spec.Name
	var mounts []mount.Mount
	for _, dk := range d.disks {
		if slices.Contains(dk.nodes, name) { // a shared disk: one volume in several containers
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: dk.volume, Target: dk.target})
		}
	}
	if n.lazy != nil {
		mounts = append(mounts, n.lazyMount())
	} else if n.dataVo != "" {
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: n.dataVo, Target: n.data})
	}
	pm, err := n.peerMounts()
	if err != nil {
		return err
	}
	mounts = append(mounts, pm...)
	env := n.peerEnv()
	vars := driver.Vars(n.spec, n.env())
	for k, v := range n.spec.Broker.Env {
		env[k] = scenario.Expand(v, vars)
	}
	argv := n.argv()
	nets, aliases := n.networks()
	req := tc.GenericContainerRequest{ContainerRequest: tc.ContainerRequest{
		Image: n.img.Ref, Name: d.name(name), Entrypoint: argv[:1], Cmd: argv[1:], Env: env,
		Labels: d.labels("node", n.spec.Site, name), Networks: nets, NetworkAliases: aliases,
		ConfigModifier: func(c *container.Config) {
			if n.inRabbitCluster() {
				c.Hostname = rabbitHost(name) // its Erlang node name's host
			}
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.Mounts = mounts
		},
	}, Started: false}
	c, err := tc.GenericContainer(ctx, req)
	if err != nil {
		return fmt.Errorf("docker: node %s: create container from %s: %w", name, n.img.Ref, err)
	}
	n.id = c.GetContainerID()
	return nil
}

// networks are the networks node n's container is on, its site's first,
// and its aliases on each: its name, and on the network of a rabbitmq
// cluster's distribution its host name too.
func (n *node) networks() ([]string, map[string][]string) {
	nets := []string{n.site.netName}
	aliases := map[string][]string{n.site.netName: n.aliases(n.site)}
	if cn := n.clusterNet(); cn != nil {
		nets = append(nets, cn.netName)
		aliases[cn.netName] = n.aliases(cn)
	}
	return nets, aliases
}

// aliases are node n's aliases on network st.
func (n *node) aliases(st *site) []string {
	a := []string{n.spec.Name}
	if n.inRabbitCluster() && st == n.d.rabbit.net && rabbitHost(n.spec.Name) != n.spec.Name {
		a = append(a, rabbitHost(n.spec.Name))
	}
	return a
}

// inspect returns node n's container state.
func (n *node) inspect(ctx context.Context) (container.InspectResponse, error) {
	res, err := n.d.cli.ContainerInspect(ctx, n.id, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
	}
	return res.Container, nil
}

// Running reports whether node's container runs (paused counts).
func (d *Driver) Running(name string) bool {
	n, err := d.node(name)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := n.inspect(ctx)
	return err == nil && st.State != nil && st.State.Running
}

// ClientAddr is the proxy address on 127.0.0.1 clients use to reach node.
func (d *Driver) ClientAddr(name string) (string, error) {
	n, err := d.node(name)
	if err != nil {
		return "", err
	}
	if addr, ok := d.px.ClientListen(name); ok {
		return addr, nil
	}
	return "", fmt.Errorf("docker: clients in site %q have no link to node %s (site %s)", d.clientsEnd(), name, n.spec.Site)
}

// Start starts node's container and waits until refbroker's /readyz says
// it is ready (200, or a standby behind a live master), then points the
// proxies to it at its address.
func (d *Driver) Start(ctx context.Context, name string) error { return d.start(ctx, name, nil) }

// start is Start with extra arguments args for this start only: the
// container is made anew when it was made with others (StartWithArgs,
// and a plain start after one).
func (d *Driver) start(ctx context.Context, name string, args []string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	if n.moved != "" {
		return fmt.Errorf("docker: start %s: its machine was lost and its disks moved to %s: it has none", name, n.moved)
	}
	if err := d.startDatabases(ctx); err != nil {
		return err
	}
	if err := n.ensureBacking(); err != nil {
		return err
	}
	if err := d.withArgs(ctx, n, args); err != nil {
		return err
	}
	t0 := time.Now()
	st, err := n.inspect(ctx)
	if err != nil {
		return err
	}
	if st.State == nil || !st.State.Running {
		if _, err := d.cli.ContainerStart(ctx, n.id, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("docker: start %s: %w\n%s", name, err, n.tail(ctx))
		}
		d.started(n, n.id)
		if st, err = n.inspect(ctx); err != nil {
			return err
		}
	}
	ep := st.NetworkSettings.Networks[n.site.netName]
	if ep == nil || !ep.IPAddress.IsValid() {
		if st.State != nil && !st.State.Running { // it ended at once: no address left to show
			return n.exitedBeforeReady(st.State.ExitCode)
		}
		return fmt.Errorf("docker: start %s: no address on network %s\n%s", name, n.site.netName, n.tail(ctx))
	}
	ip := ep.IPAddress.String()
	n.mu.Lock()
	n.ip = ip
	n.mu.Unlock()
	if err := d.pointLinks(name, ip); err != nil {
		return err
	}
	if err := n.waitReady(ctx, ip); err != nil {
		return err
	}
	d.log("start %s (container %.12s, %s) in %s", name, n.id, ip, time.Since(t0).Truncate(time.Millisecond))
	return d.joinRabbitMQ(ctx, n, ip)
}

// pointLinks points every proxy to node name at its address ip (its
// STOMP or replication port).
func (d *Driver) pointLinks(name, ip string) error {
	for _, l := range d.px.Links() {
		if l.ToNode != name {
			continue
		}
		port := stompPort
		if l.Port == "repl" {
			port = replPort
		}
		if err := d.px.SetUpstream(l, net.JoinHostPort(ip, port)); err != nil {
			return err
		}
	}
	return nil
}

// exitedBeforeReady says that n's container ended, with code, before
// it was ready, and shows its last log lines.
func (n *node) exitedBeforeReady(code int) error {
	return fmt.Errorf("docker: start %s: its container exited (code %d) before ready; last log lines:\n%s",
		n.spec.Name, code, n.tail(context.Background()))
}

func (n *node) waitReady(ctx context.Context, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, n.readyTimeout())
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	admin := net.JoinHostPort(ip, adminPort)
	for {
		if n.ready(ctx, hc, admin) {
			return nil
		}
		st, err := n.inspect(ctx)
		if err == nil && st.State != nil && !st.State.Running {
			return n.exitedBeforeReady(st.State.ExitCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker: start %s: not ready after %s; last log lines:\n%s", n.spec.Name, n.readyTimeout(), n.tail(context.Background()))
		case <-tick.C:
		}
	}
}

// logs returns the container's output (stdout and stderr), the last tail
// lines of it when tail is not "all".
func (n *node) logs(ctx context.Context, tail string) string {
	return containerLogs(ctx, n.d.cli, n.id, tail)
}

// containerLogs returns container id's output (stdout and stderr), its
// last tail lines when tail is not "all".
func containerLogs(ctx context.Context, cli *client.Client, id, tail string) string {
	res, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer res.Close()
	b, _ := io.ReadAll(io.LimitReader(res, 16<<20))
	return demux(b)
}

// tail is the container's last log lines.
func (n *node) tail(ctx context.Context) string { return n.logs(ctx, "15") }

// saveLog writes the container's whole output to the node's log file in
// the run folder.
func (n *node) saveLog(ctx context.Context) {
	if n.id == "" {
		return
	}
	_ = os.WriteFile(n.logP, []byte(n.past+n.logs(ctx, "all")), 0o644)
}

// demux strips Docker's 8-byte stream headers from a non-TTY log stream.
func demux(b []byte) string {
	var out strings.Builder
	for len(b) >= 8 && (b[0] == 1 || b[0] == 2) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		size := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if size > len(b) {
			size = len(b)
		}
		out.Write(b[:size])
		b = b[size:]
	}
	out.Write(b)
	return out.String()
}

// Kill sends SIGKILL to node's container and waits for it to exit. A node
// that is not running is left as it is.
func (d *Driver) Kill(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	n.ending()
	killed, err := d.killContainer(ctx, n.id)
	if err != nil {
		return fmt.Errorf("docker: kill %s: %w", name, err)
	}
	if !killed {
		return nil
	}
	d.log("kill -9 %s", name)
	return nil
}

// killContainer sends SIGKILL to container id if it runs and waits for
// it to exit; killed says whether it ran.
func (d *Driver) killContainer(ctx context.Context, id string) (killed bool, err error) {
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return false, err
	}
	if res.Container.State == nil || !res.Container.State.Running {
		return false, nil
	}
	wait := d.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	if _, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return false, err
	}
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		return false, fmt.Errorf("wait: %w", err)
	}
	return true, nil
}

// Stop stops node's container: SIGTERM, SIGKILL after StopTimeout (docker
// stop; a paused container is thawed by the engine first).
func (d *Driver) Stop(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	secs := int(StopTimeout / time.Second)
	n.ending()
	if _, err := d.cli.ContainerStop(ctx, n.id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("docker: stop %s: %w", name, err)
	}
	d.log("stop %s", name)
	return nil
}

// Pause freezes node's container (docker pause: the cgroup freezer).
func (d *Driver) Pause(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	if _, err := d.cli.ContainerPause(ctx, n.id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("docker: pause %s: %w", name, err)
	}
	d.log("pause %s", name)
	return nil
}

// Resume thaws a paused node (docker unpause); a node not paused is left
// as it is.
func (d *Driver) Resume(ctx context.Context, name string) error {
	n, err := d.node(name)
	if err != nil {
		return err
	}
	st, err := n.inspect(ctx)
	if err != nil {
		return err
	}
	if st.State == nil || !st.State.Paused {
		return nil
	}
	if _, err := d.cli.ContainerUnpause(ctx, n.id, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("docker: resume %s: %w", name, err)
	}
	d.log("resume %s", name)
	return nil
}

// Cut, Heal, AddToxic and RemoveToxic act on the proxies, as in the local
// driver.

// Cut cuts the proxies between a and b; a cut isolating a whole site (a
// site and driver.Any) also disconnects the site's network from its
// nodes (DisconnectSite), so no traffic of theirs passes outside the
// proxies either. Between two sites only the proxies are cut: taking a
// network away would cut the clients too.
func (d *Driver) Cut(ctx context.Context, a, b string) error {
	if err := d.px.Cut(ctx, a, b); err != nil {
		return err
	}
	if s := d.wholeSite(a, b); s != "" {
		return d.DisconnectSite(ctx, s)
	}
	return nil
}

// Heal undoes one Cut(a, b), connecting a whole site's network again.
func (d *Driver) Heal(ctx context.Context, a, b string) error {
	if err := d.px.Heal(ctx, a, b); err != nil {
		return err
	}
	if s := d.wholeSite(a, b); s != "" {
		return d.ConnectSite(ctx, s)
	}
	return nil
}

// wholeSite is the site a Cut(a, b) isolates from everything, or "".
func (d *Driver) wholeSite(a, b string) string {
	if a == driver.Any {
		a, b = b, a
	}
	if _, ok := d.nets[a]; ok && b == driver.Any {
		return a
	}
	return ""
}
func (d *Driver) AddToxic(ctx context.Context, a, b string, t driver.Toxic) (string, error) {
	return d.px.AddToxic(ctx, a, b, t)
}
func (d *Driver) RemoveToxic(ctx context.Context, id string) error { return d.px.RemoveToxic(ctx, id) }

var _ driver.Depths = (*Driver)(nil)

// QueueDepth asks a running node's refbroker (GET /status on its admin
// port, at its container's address) how many messages it holds on dest.
func (d *Driver) QueueDepth(ctx context.Context, name, dest string) (int, bool) {
	n, err := d.node(name)
	if err != nil {
		return 0, false
	}
	n.mu.Lock()
	ip := n.ip
	n.mu.Unlock()
	if ip == "" || !d.Running(name) {
		return 0, false
	}
	return driver.RefBrokerQueueDepth(ctx, net.JoinHostPort(ip, adminPort), dest)
}

// DisconnectSite takes site's network from every node container of the
// site (site-lost, a partition of the whole site), and the network of a
// rabbitmq cluster's distribution from those of its members when it is
// the cluster's own: they keep no interface on them until as many
// ConnectSite calls.
func (d *Driver) DisconnectSite(ctx context.Context, name string) error {
	st, ok := d.nets[name]
	if !ok {
		return fmt.Errorf("docker: site %q: %w", name, driver.ErrUnknown)
	}
	d.siteMu.Lock()
	defer d.siteMu.Unlock()
	st.down++
	for _, nn := range d.order {
		n := d.nodes[nn]
		if n.site != st {
			continue
		}
		c, err := n.inspect(ctx)
		if err != nil {
			return err
		}
		for _, net := range []*site{st, n.clusterNet()} {
			if net == nil || c.NetworkSettings == nil || c.NetworkSettings.Networks[net.netName] == nil {
				continue
			}
			if _, err := d.cli.NetworkDisconnect(ctx, net.id, client.NetworkDisconnectOptions{Container: n.id, Force: true}); err != nil {
				return fmt.Errorf("docker: disconnect network %s of site %s from %s: %w", net.netName, name, nn, err)
			}
		}
	}
	d.log("site %s: network %s disconnected from its nodes", name, st.netName)
	return nil
}

// ConnectSite undoes one DisconnectSite: the last one gives site's
// network (and a rabbitmq cluster's own) back to its node containers,
// with the aliases createNode attached them with, and points the
// proxies to each running node's address on it (the engine may give it
// another one).
func (d *Driver) ConnectSite(ctx context.Context, name string) error {
	st, ok := d.nets[name]
	if !ok {
		return fmt.Errorf("docker: site %q: %w", name, driver.ErrUnknown)
	}
	d.siteMu.Lock()
	defer d.siteMu.Unlock()
	if st.down > 0 {
		st.down--
	}
	if st.down > 0 {
		return nil
	}
	for _, nn := range d.order {
		n := d.nodes[nn]
		if n.site != st {
			continue
		}
		c, err := n.inspect(ctx)
		if err != nil {
			return err
		}
		for _, net := range []*site{st, n.clusterNet()} {
			if net == nil || c.NetworkSettings != nil && c.NetworkSettings.Networks[net.netName] != nil {
				continue
			}
			if _, err := d.cli.NetworkConnect(ctx, net.id, client.NetworkConnectOptions{Container: n.id,
				EndpointConfig: &network.EndpointSettings{Aliases: n.aliases(net)}}); err != nil {
				return fmt.Errorf("docker: connect network %s of site %s to %s: %w", net.netName, name, nn, err)
			}
		}
		if c.State == nil || !c.State.Running {
			continue // Start points the proxies when it starts the node
		}
		if c, err = n.inspect(ctx); err != nil {
			return err
		}
		ep := c.NetworkSettings.Networks[st.netName]
		if ep == nil || !ep.IPAddress.IsValid() {
			return fmt.Errorf("docker: %s has no address on network %s after it was connected again", nn, st.netName)
		}
		n.mu.Lock()
		n.ip = ep.IPAddress.String()
		n.mu.Unlock()
		if err := d.pointLinks(nn, ep.IPAddress.String()); err != nil {
			return err
		}
	}
	d.log("site %s: network %s connected to its nodes again", name, st.netName)
	return nil
}
