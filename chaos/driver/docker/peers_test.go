package docker

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// TestPeerKindsRefused: a rabbitmq cluster over two sites no link joins
// and several activemq nodes are refused before any engine call, with
// ErrUnsupported saying why, so --driver auto runs them on local.
func TestPeerKindsRefused(t *testing.T) {
	node := func(name, site string, kind scenario.BrokerKind) scenario.Node {
		return scenario.Node{Name: name, Site: site, Broker: scenario.Broker{Kind: kind}}
	}
	sites := []scenario.Site{{Name: "a"}, {Name: "b"}}
	for _, c := range []struct {
		nodes []scenario.Node
		want  string
	}{
		{[]scenario.Node{node("a1", "a", scenario.RabbitMQ), node("b1", "b", scenario.RabbitMQ)}, "no link joins"},
		{[]scenario.Node{node("a1", "a", scenario.ActiveMQ), node("a2", "a", scenario.ActiveMQ)}, "one node only"},
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

// TestNATSClusterRoutes: a nats cluster over three sites runs on docker
// with its routes through the link proxies (the nodes' replication
// links), never straight between the containers: every server sees the
// other two, each route's remote end is a proxy on the site network's
// gateway (no peer's container address); cutting site a from b and c
// drops a1's routes while b1 and c1 keep theirs, and healing brings them
// back.
func TestNATSClusterRoutes(t *testing.T) {
	cli := engine(t)
	run := "natscl-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var nodes []scenario.Node
	for _, s := range []string{"a", "b", "c"} {
		nodes = append(nodes, scenario.Node{Name: s + "1", Site: s, Broker: scenario.Broker{Kind: scenario.NATS, Store: "jetstream"}})
	}
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Links: []scenario.Link{{A: "a", B: "b"}, {A: "a", B: "c"}, {A: "b", B: "c"}}, Nodes: nodes}
	d, err := New(t.Context(), driver.Config{Topology: topo, RunID: run, Scenario: "natscl", Dir: t.TempDir(), Log: t.Logf})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := d.Start(t.Context(), n.Name); err != nil {
			t.Fatal(err)
		}
	}
	ips := map[string]bool{}
	for _, n := range nodes {
		ips[d.nodes[n.Name].ip] = true
	}
	waitRoutes(t, d, "a1", []string{"b1", "c1"}, ips)
	waitRoutes(t, d, "b1", []string{"a1", "c1"}, ips)
	waitRoutes(t, d, "c1", []string{"a1", "b1"}, ips)
	for _, b := range []string{"b", "c"} {
		if err := d.Cut(t.Context(), "a", b); err != nil {
			t.Fatal(err)
		}
	}
	waitRoutes(t, d, "a1", nil, ips)
	waitRoutes(t, d, "b1", []string{"c1"}, ips)
	for _, b := range []string{"b", "c"} {
		if err := d.Heal(t.Context(), "a", b); err != nil {
			t.Fatal(err)
		}
	}
	waitRoutes(t, d, "a1", []string{"b1", "c1"}, ips)
	closeClean(t, cli, d, run)
}

// waitRoutes polls node's monitoring /routez until the servers its routes
// reach are want (sorted), failing when a route's remote address is one
// of the containers' own (direct, past the proxies) or when the test's
// deadline nears.
func waitRoutes(t *testing.T, d *Driver, node string, want []string, direct map[string]bool) {
	t.Helper()
	n := d.nodes[node]
	n.mu.Lock()
	url := "http://" + n.ip + ":" + adminPort + "/routez"
	n.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second}
	var got []string
	for {
		got = nil
		var rz struct {
			Routes []struct {
				RemoteName string `json:"remote_name"`
				IP         string `json:"ip"`
			} `json:"routes"`
		}
		resp, err := hc.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&rz)
			resp.Body.Close()
		}
		if err == nil {
			for _, r := range rz.Routes {
				if direct[r.IP] {
					t.Fatalf("%s: route to %s goes straight to its container (%s), not through a proxy", node, r.RemoteName, r.IP)
				}
				if !slices.Contains(got, r.RemoteName) {
					got = append(got, r.RemoteName)
				}
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				return
			}
		}
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 30*time.Second {
			t.Fatalf("%s: routes to %q (last error %v), want %q", node, got, err, want)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
