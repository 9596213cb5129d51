package docker

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestNATSNode: a node of kind nats runs in a container of the
// nats-server image built here (FROM scratch, static), its JetStream
// store on its disk (here through lazyfs, for a power cut), ready once
// its JetStream health check answers through the container's address;
// after a power cut it starts again on what was synced, and Close
// leaves nothing.
func TestNATSNode(t *testing.T) {
	cli := engine(t)
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx := t.Context()
	run := "nats-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.NATS, Store: "jetstream", Fsync: "always"}}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}}}
	d, err := New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "nats", Dir: t.TempDir(), Log: t.Logf, PowerCutNodes: []string{"a1"}})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if argv := d.Info().Brokers["a1"]; len(argv) < 3 || argv[0] != natsBin || argv[2] != natsConf {
		t.Fatalf("a1's command line %q, want %s -c %s", argv, natsBin, natsConf)
	}
	st, err := d.nodes["a1"].inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Config.Image, NATSImageRepo+":") {
		t.Fatalf("a1 runs image %s, want one of %s", st.Config.Image, NATSImageRepo)
	}
	for i := 0; i < 2; i++ {
		if err := d.Start(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		// JetStream made its store on the disk, under lazyfs.
		if _, err := os.Stat(filepath.Join(d.nodes["a1"].backing, "jetstream")); err != nil {
			t.Fatalf("no JetStream store on a1's disk: %v", err)
		}
		if err := d.PowerCut(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, cli, run); len(left) > 0 {
		t.Errorf("Close left %q", left)
	}
}

// TestPeerKindsRefused: a rabbitmq cluster, several activemq nodes, an
// activemq node on store jdbc, and a nats cluster spread over two sites are refused before any
// engine call, with ErrUnsupported saying why, so --driver auto runs
// them on local.
func TestPeerKindsRefused(t *testing.T) {
	node := func(name, site string, kind scenario.BrokerKind) scenario.Node {
		return scenario.Node{Name: name, Site: site, Broker: scenario.Broker{Kind: kind}}
	}
	sites := []scenario.Site{{Name: "a"}, {Name: "b"}}
	for _, c := range []struct {
		nodes []scenario.Node
		want  string
	}{
		{[]scenario.Node{node("a1", "a", scenario.RabbitMQ), node("a2", "a", scenario.RabbitMQ)}, "one node only"},
		{[]scenario.Node{node("a1", "a", scenario.ActiveMQ), node("a2", "a", scenario.ActiveMQ)}, "one node only"},
		{[]scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.ActiveMQ, Store: scenario.ActiveMQJDBC}}}, "store jdbc"},
		{[]scenario.Node{node("a1", "a", scenario.NATS), node("b1", "b", scenario.NATS)}, "one site network"},
	} {
		d, err := New(t.Context(), driver.Config{Topology: scenario.Topology{Sites: sites, Nodes: c.nodes}, Dir: t.TempDir()})
		if d != nil || !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v) = %v, %v; want an ErrUnsupported naming %s", c.nodes, d, err, c.want)
		}
	}
}

// TestRelativeRunDir: `lossbench run --out results` gives the driver a
// relative run folder; the files it bind-mounts into a peer's container
// (nats.conf) must still be found, since the engine takes absolute
// paths only ("mount path must be absolute" before the fix).
func TestRelativeRunDir(t *testing.T) {
	engine(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, t.TempDir())
	if err != nil || filepath.IsAbs(rel) {
		t.Fatalf("no relative path to the test's folder: %q, %v", rel, err)
	}
	run := "reldir-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.NATS, Store: "jetstream", Fsync: "always"}}},
		Disks: []scenario.Disk{{Name: "a1-data", Node: "a1"}}}
	d, err := New(t.Context(), driver.Config{Topology: topo, RunID: run, Scenario: "reldir", Dir: rel, Log: t.Logf})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context(), "a1"); err != nil {
		t.Fatalf("start with a relative run folder: %v", err)
	}
}
