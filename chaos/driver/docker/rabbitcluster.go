package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/internal/proxies"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// A RabbitMQ cluster in containers. Two or more rabbitmq nodes form one
// cluster, as on local: each node after the first joins the first the
// first time it is ready (rabbitmqctl stop_app, join_cluster, start_app,
// run in its container with docker exec); its membership is in its
// Mnesia store from then on, so a node killed or power-cut rejoins by
// itself when it starts again. The nodes share one Erlang cookie (a
// random one per run, written into each node's HOME in its run folder).
//
// Each node is named after a host of its own (name@host, host its node
// name made a DNS label: lower case, '.' and '_' as '-'), which is its
// container's hostname and its alias on the network their Erlang
// distribution goes over, where the engine's DNS resolves it to the
// container's current address (a restarted container may get another).
// Each container runs its own port mapper (epmd, on 4369) and the
// node's distribution port (25672) on its interfaces: containers have
// a network namespace each, so a node killed with its epmd takes no
// other node's registration along (on local, where all share one host,
// the driver runs one epmd for them all).
//
// That network is their site's when they are all on one site. When they
// are on several, it is a network of the cluster's own (labelled like a
// site's, role network) that every rabbitmq container joins beside its
// site's; the sites must be linked. Erlang's distribution goes over that
// network directly, not through the link proxies: a node learns where a
// peer is from the peer's host name and the fixed epmd port, and a proxy
// for it would need an address of its own per peer on each node's
// network (the gateway address the proxies listen on is one per site
// network, and every peer's epmd is on 4369), which no proxy here has.
// So, as on local, toxics and cuts between two sites do not reach the
// cluster's own traffic; a cut isolating a whole site, and site-lost,
// take the site's nodes off the cluster's network as well as their
// site's.
type rabbitCluster struct {
	seed   string // the first rabbitmq node, which the others join
	cookie string
	net    *site // the network of their distribution
	own    bool  // net is the cluster's own network, not a site's
}

// checkRabbitMQ refuses a rabbitmq cluster whose nodes' host names
// clash, or that spans sites the topology does not link.
func checkRabbitMQ(topo scenario.Topology) error {
	if kindNodes(topo, scenario.RabbitMQ) < 2 {
		return nil
	}
	hosts := map[string]string{}
	for _, n := range topo.Nodes {
		if n.Broker.Kind != scenario.RabbitMQ {
			continue
		}
		h := rabbitHost(n.Name)
		if o, ok := hosts[h]; ok {
			return fmt.Errorf("docker: node %s: rabbitmq nodes %s and %s would have the same host name %s", n.Name, o, n.Name, h)
		}
		hosts[h] = n.Name
		for _, o := range topo.Nodes {
			if o.Broker.Kind == scenario.RabbitMQ && !proxies.Linked(topo, n.Site, o.Site) {
				return fmt.Errorf("docker: node %s: rabbitmq nodes on sites %s and %s, which no link joins, cannot form a cluster: %w", n.Name, n.Site, o.Site, driver.ErrUnsupported)
			}
		}
	}
	return nil
}

// rabbitHost is the host name of a rabbitmq cluster node: a DNS label,
// which an Erlang short name's host part must be.
func rabbitHost(name string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(strings.ToLower(name))
}

// layoutRabbitMQ sets up the cluster of two or more rabbitmq nodes: its
// seed and cookie, and the network of their distribution (one of its own
// when they are on several sites).
func (d *Driver) layoutRabbitMQ(ctx context.Context) error {
	var names []string
	sites := map[string]bool{}
	for _, sn := range d.cfg.Topology.Nodes {
		if sn.Broker.Kind == scenario.RabbitMQ {
			names = append(names, sn.Name)
			sites[sn.Site] = true
		}
	}
	if len(names) < 2 {
		return nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("docker: rabbitmq cookie: %w", err)
	}
	c := &rabbitCluster{seed: names[0], cookie: strings.ToUpper(hex.EncodeToString(b))}
	if len(sites) == 1 {
		for s := range sites {
			c.net = d.nets[s]
		}
	} else {
		st := &site{name: "rabbitmq", netName: d.name("rabbitmq")}
		res, err := d.cli.NetworkCreate(ctx, st.netName, client.NetworkCreateOptions{Driver: "bridge", Labels: d.labels("network", "", "")})
		if err != nil {
			return fmt.Errorf("docker: network of the rabbitmq cluster: %w", err)
		}
		st.id = res.ID
		c.net, c.own = st, true
		d.notes = append(d.notes, fmt.Sprintf("rabbitmq cluster %v: Erlang distribution over network %s, not through the link proxies", names, st.netName))
	}
	d.rabbit = c
	return nil
}

// inRabbitCluster says whether node n is a member of the rabbitmq cluster.
func (n *node) inRabbitCluster() bool {
	return n.d.rabbit != nil && n.spec.Broker.Kind == scenario.RabbitMQ
}

// clusterNet is the cluster's own network node n joins beside its site's,
// or nil.
func (n *node) clusterNet() *site {
	if n.inRabbitCluster() && n.d.rabbit.own {
		return n.d.rabbit.net
	}
	return nil
}

// joinRabbitMQ makes node n, started and ready, a member of the cluster
// the first time it runs, then waits until it is ready again.
func (d *Driver) joinRabbitMQ(ctx context.Context, n *node, ip string) error {
	if !n.inRabbitCluster() || n.spec.Name == d.rabbit.seed {
		return nil
	}
	n.mu.Lock()
	joined := n.joined
	n.mu.Unlock()
	if joined {
		return nil
	}
	t0 := time.Now()
	seed := d.nodes[d.rabbit.seed].rabbitmq().NodeName()
	if err := n.rabbitmq().Join(ctx, seed, n.exec); err != nil {
		return fmt.Errorf("docker: %s: %w", n.spec.Name, err)
	}
	if err := n.waitReady(ctx, ip); err != nil {
		return err
	}
	n.mu.Lock()
	n.joined = true
	n.mu.Unlock()
	d.log("%s joined the rabbitmq cluster of %s in %s", n.spec.Name, d.rabbit.seed, time.Since(t0).Truncate(time.Millisecond))
	return nil
}

// exec runs argv in node n's running container, with the container's
// environment, and returns its output (stdout and stderr); an exit code
// other than 0 is an error.
func (n *node) exec(ctx context.Context, argv []string) (string, error) {
	cr, err := n.d.cli.ExecCreate(ctx, n.id, client.ExecCreateOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", err
	}
	at, err := n.d.cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", err
	}
	stop := context.AfterFunc(ctx, at.Close) // the read below does not watch ctx
	b, rerr := io.ReadAll(io.LimitReader(at.Reader, 16<<20))
	stop()
	at.Close()
	out := demux(b)
	if rerr != nil && ctx.Err() != nil {
		return out, ctx.Err()
	}
	in, err := n.d.cli.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
	if err != nil {
		return out, err
	}
	if in.Running {
		return out, fmt.Errorf("%s: still running after its output ended", argv[0])
	}
	if in.ExitCode != 0 {
		return out, fmt.Errorf("%s: exit code %d", argv[0], in.ExitCode)
	}
	return out, nil
}
