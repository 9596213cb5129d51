package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Peer brokers in containers. A node of kind nats runs from
// lossbench/nats-server, a FROM scratch image of a static nats-server
// (peers.NATSServerModule at peers.NATSServerVersion, built with
// CGO_ENABLED=0 go install into the image folder), tagged by the
// binary's content hash like the refbroker image. Its configuration
// (peers.NATSNode) is written into the run folder and bind-mounted
// read-only; the server listens for clients on the port refbroker's
// STOMP uses, and serves its monitoring (the readiness check) on
// refbroker's admin port, so the proxies and the start are the same. A
// cluster's routes listen on refbroker's replication port and go through
// the nodes' replication links (the proxies), as on local, so partitions
// and site faults cut them, across sites or within one.
//
// A node of kind rabbitmq runs from lossbench/rabbitmq (rabbitimage.go).
// Its generated configuration (peers.RabbitMQNode, as on local) is
// written into the run folder, which is bind-mounted at /rabbitmq (its
// HOME and logs go there too); the server listens for AMQP on
// refbroker's STOMP port, inside the container, with its own port
// mapper (on 127.0.0.1 for a lone node; on the container's interfaces
// for a cluster's member, rabbitcluster.go); its stores are on the
// node's data volume. It is ready when that port accepts a connection.
//
// A node of kind activemq runs from lossbench/activemq (amqimage.go),
// one node. Its generated configuration (peers.ActiveMQNode, as on
// local) is written into the run folder, bind-mounted at /activemq (its
// ACTIVEMQ_BASE: conf/, tmp/, lib/); the broker listens for STOMP on
// refbroker's STOMP port; KahaDB is on the node's data volume, or with
// store jdbc its PostgreSQL database is a container of the topology,
// reached through the node's proxy to it (amqnode.go). It is ready when
// that port accepts a connection: ActiveMQ opens its connectors after
// its store has recovered.

// NATSImageRepo is the repository of the nats-server images built here.
const NATSImageRepo = "lossbench/nats-server"

// Inside a nats node's container.
const (
	natsBin  = "/nats-server"
	natsConf = "/etc/nats.conf"
)

// NATSImage returns the image of a static nats-server, building the
// binary (minutes the first time, then cached in dir) and the image
// when missing. Nothing is pulled; the Go module proxy (or the module
// cache) must have the server's module.
func NATSImage(ctx context.Context, cli *client.Client, dir string) (Image, error) {
	bdir := filepath.Join(dir, "nats-server-"+peers.NATSServerVersion+"-static")
	bin := filepath.Join(bdir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		if err := peers.BuildNATSServer(ctx, bdir, "CGO_ENABLED=0"); err != nil {
			return Image{}, fmt.Errorf("docker: nats-server image: %w", err)
		}
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return Image{}, fmt.Errorf("docker: nats-server image: %w", err)
	}
	return staticImage(ctx, cli, NATSImageRepo, "nats-server", body)
}

// staticImage is the image of one static binary, repo:<the first 12 hex
// digits of its SHA-256>, built (FROM scratch, the binary at /name, its
// entrypoint) only when that tag is missing.
func staticImage(ctx context.Context, cli *client.Client, repo, name string, body []byte) (Image, error) {
	sum := sha256.Sum256(body)
	ref := repo + ":" + hex.EncodeToString(sum[:])[:12]
	if in, err := cli.ImageInspect(ctx, ref); err == nil {
		return Image{Ref: ref, ID: in.ID, Size: in.Size}, nil
	}
	df := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	return buildImage(ctx, cli, ref, []imageFile{{"Dockerfile", 0o644, []byte(df)}, {name, 0o755, body}})
}

// checkPeers refuses, before any engine call, the nodes whose kind has
// no image here, and a command broker whose node names no image (the
// command runs in that image: there is nothing else to run it in).
func checkPeers(topo scenario.Topology) error {
	for _, n := range topo.Nodes {
		switch n.Broker.Kind {
		case scenario.RefBroker, scenario.NATS, scenario.RabbitMQ:
		case scenario.ActiveMQ:
			if err := activeMQJDBCAvailable(n); err != nil {
				return err
			}
			if kindNodes(topo, scenario.ActiveMQ) > 1 {
				return fmt.Errorf("docker: node %s: several activemq nodes are not run here, one node only (the scenario format has no ActiveMQ network of brokers or shared store, and no scenario has two): %w", n.Name, driver.ErrUnsupported)
			}
		case scenario.Command:
			if n.Image == "" {
				return fmt.Errorf("docker: node %s: a command broker (%q) runs in the image its node names, and node %s names none: give it an image: that holds %s, or run it with --driver local: %w",
					n.Name, n.Broker.Command, n.Name, commandName(n.Broker), driver.ErrUnsupported)
			}
		default:
			return fmt.Errorf("docker: node %s: kind %s has no image here (it needs a runtime, Erlang or a JVM, that no image is made of yet; the local driver runs it): %w", n.Name, n.Broker.Kind, driver.ErrUnsupported)
		}
	}
	return checkRabbitMQ(topo)
}

// commandName is a command broker's executable, for messages.
func commandName(b scenario.Broker) string {
	if len(b.Command) == 0 {
		return "its command"
	}
	return b.Command[0]
}

// kindNodes counts topo's nodes of kind: more than one nats or rabbitmq
// node form a cluster.
func kindNodes(topo scenario.Topology, kind scenario.BrokerKind) int {
	k := 0
	for _, n := range topo.Nodes {
		if n.Broker.Kind == kind {
			k++
		}
	}
	return k
}

// peerImage is the image a node of a peer kind runs when the scenario
// names none (ok false for refbroker): the one Config.PeerImages names
// (--rabbitmq-image), else the one made here, built once a run.
func (d *Driver) peerImage(ctx context.Context, kind scenario.BrokerKind) (img Image, ok bool, err error) {
	if ref := d.cfg.PeerImages[string(kind)]; ref != "" {
		img, err := NamedImage(ctx, d.cli, ref)
		if err == nil {
			d.notes = append(d.notes, fmt.Sprintf("image %s id %s size %d", img.Ref, img.ID, img.Size))
		}
		return img, true, err
	}
	var cached *Image
	var build func() (Image, error)
	switch kind {
	case scenario.NATS:
		cached, build = &d.natsImg, func() (Image, error) { return NATSImage(ctx, d.cli, ImageDir()) }
	case scenario.RabbitMQ:
		cached, build = &d.rabbitImg, func() (Image, error) { return RabbitMQImage(ctx, d.cli) }
	case scenario.ActiveMQ:
		cached, build = &d.amqImg, func() (Image, error) { return ActiveMQImage(ctx, d.cli) }
	default:
		return Image{}, false, nil
	}
	if cached.Ref == "" {
		if *cached, err = build(); err != nil {
			return Image{}, true, err
		}
		if cached.Build > 0 {
			d.log("built image %s (%s, %.1f MB) in %s, %d listed symlinks that resolve nowhere left out", cached.Ref, cached.ID, float64(cached.Size)/1e6, cached.Build.Truncate(time.Millisecond), cached.Dangling)
		}
		d.notes = append(d.notes, fmt.Sprintf("image %s id %s size %d", cached.Ref, cached.ID, cached.Size))
	}
	return *cached, true, nil
}

// Inside a rabbitmq node's container: its configuration folder (a bind
// mount of the node's run folder) and its Erlang ports, on 127.0.0.1
// (on its interfaces when it is a cluster's member).
const (
	rabbitDir      = "/rabbitmq"
	rabbitEPMDPort = 4369
	rabbitDistPort = 25672
)

// rabbitmq is a rabbitmq node's server settings inside its container.
func (n *node) rabbitmq() peers.RabbitMQNode {
	r := peers.RabbitMQNode{Name: n.spec.Name, Listen: "0.0.0.0:" + stompPort, EPMDPort: rabbitEPMDPort,
		DistPort: rabbitDistPort, Dir: rabbitDir, Data: n.data}
	if n.inRabbitCluster() {
		r.Host, r.Cookie = rabbitHost(n.spec.Name), n.d.rabbit.cookie
	}
	return r
}

// activeMQDir is an activemq node's ACTIVEMQ_BASE inside its container
// (a bind mount of the node's run folder).
const activeMQDir = "/activemq"

// activemq is an activemq node's broker settings inside its container.
func (n *node) activemq() peers.ActiveMQNode {
	return peers.ActiveMQNode{Listen: "0.0.0.0:" + stompPort, Dir: activeMQDir, Data: n.data, Sync: n.spec.Broker.Fsync}
}

// peerEnv is a peer node's server environment (none for refbroker, nats).
func (n *node) peerEnv() map[string]string {
	env := map[string]string{}
	if n.spec.Broker.Kind == scenario.RabbitMQ {
		for _, kv := range n.rabbitmq().Env() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

// natsArgv is a nats node's command line: its configuration file, then
// the scenario's extra arguments.
func (n *node) natsArgv() []string {
	return append([]string{natsBin, "-c", natsConf}, n.spec.Broker.Argv(driver.Vars(n.spec, n.env()))...)
}

// peerMounts writes a peer node's configuration into the run folder and
// returns its bind mount (none for refbroker).
func (n *node) peerMounts() ([]mount.Mount, error) {
	switch n.spec.Broker.Kind {
	case scenario.NATS:
		return n.natsMounts()
	case scenario.RabbitMQ:
		r := n.rabbitmq()
		r.Dir = filepath.Join(n.d.cfg.Dir, "nodes", n.spec.Name)
		if err := r.Write(); err != nil {
			return nil, fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
		}
		return []mount.Mount{{Type: mount.TypeBind, Source: r.Dir, Target: rabbitDir}}, nil
	case scenario.ActiveMQ:
		return n.activemqMounts()
	}
	return nil, nil
}

// natsMounts writes a nats node's configuration file and returns its
// bind mount.
func (n *node) natsMounts() ([]mount.Mount, error) {
	nn := peers.NATSNode{Name: n.spec.Name, Listen: "0.0.0.0:" + stompPort, Monitor: "0.0.0.0:" + adminPort,
		Data: n.data, Sync: n.spec.Broker.Fsync}
	if kindNodes(n.d.cfg.Topology, scenario.NATS) > 1 {
		// Routes come in on the replication port, and each goes out
		// through the proxy of the link from this node to the other (its
		// replication link, on this site network's gateway), as on
		// local: link faults between the sites, and a site's loss, cut
		// them. A server whose site does not reach another's has no
		// route to it.
		nn.Cluster = "0.0.0.0:" + replPort
		repl := n.env().ReplPeers
		for _, o := range n.d.order {
			if o != n.spec.Name && n.d.nodes[o].spec.Broker.Kind == scenario.NATS && repl[o] != "" {
				nn.Routes = append(nn.Routes, repl[o])
			}
		}
	}
	dir := filepath.Join(n.d.cfg.Dir, "nodes", n.spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
	}
	p := filepath.Join(dir, "nats.conf")
	if err := nn.WriteConfig(p); err != nil {
		return nil, fmt.Errorf("docker: node %s: %w", n.spec.Name, err)
	}
	return []mount.Mount{{Type: mount.TypeBind, Source: p, Target: natsConf, ReadOnly: true}}, nil
}

// ready reports whether node n's broker at its container address ip is
// ready: refbroker's /readyz, nats-server's JetStream health check.
func (n *node) ready(ctx context.Context, hc *http.Client, admin string) bool {
	switch n.spec.Broker.Kind {
	case scenario.NATS:
		return peers.NATSReady(ctx, hc, admin)
	case scenario.RabbitMQ, scenario.ActiveMQ, scenario.Command:
		// No admin endpoint known: ready once its STOMP port ({listen})
		// accepts a connection, as on the local driver.
		host, _, _ := net.SplitHostPort(admin)
		var dl net.Dialer
		c, err := dl.DialContext(ctx, "tcp", net.JoinHostPort(host, stompPort))
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	return driver.RefBrokerReady(ctx, hc, admin)
}

// readyTimeout bounds the wait for node n to be ready: Erlang's boot and
// RabbitMQ's recovery of its stores after a crash take 10-60 s on a
// loaded machine; ActiveMQ's JVM start and KahaDB's recovery as long. A
// rabbitmq cluster's member gets longer: with three Erlang nodes booting
// and joining on 2 cores at load 30-56 (2026-12-02), a member's boot
// went past 3 minutes.
func (n *node) readyTimeout() time.Duration {
	switch {
	case n.inRabbitCluster():
		return max(ReadyTimeout, 6*time.Minute)
	case n.spec.Broker.Kind == scenario.RabbitMQ || n.spec.Broker.Kind == scenario.ActiveMQ:
		return max(ReadyTimeout, 3*time.Minute)
	}
	return ReadyTimeout
}
