package local

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestRabbitMQCluster starts three rabbitmq nodes (Debian's package;
// skipped, saying why, where it is not installed): they form one cluster
// of three running members, and a1, killed with kill -9 and restarted,
// is a running member again; the cluster's port mapper outlives a1's
// kill, and nothing of the cluster runs after Close.
func TestRabbitMQCluster(t *testing.T) {
	if err := peers.RabbitMQAvailable(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("-short: three Erlang nodes take a minute or two to start")
	}
	topo := scenario.Topology{
		Sites: []scenario.Site{{Name: "a"}, {Name: "clients"}},
		Links: []scenario.Link{{A: "clients", B: "a"}},
	}
	for _, name := range []string{"a1", "a2", "a3"} {
		topo.Nodes = append(topo.Nodes, scenario.Node{Name: name, Site: "a",
			Broker: scenario.Broker{Kind: scenario.RabbitMQ, Store: "quorum"}})
	}
	d := newDriverWith(t, topo, func(o *Options) { o.ReadyTimeout = 3 * time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"a1@localhost", "a2@localhost", "a3@localhost"}
	running := func(on string) []string {
		r := d.nodes[on].rabbitmq()
		cmd := exec.CommandContext(ctx, peers.RabbitMQCtl, "-n", r.NodeName(), "eval",
			`io:format("~s~n", [lists:join(",", lists:sort([atom_to_list(N) || N <- rabbit_nodes:all_running()]))]).`)
		cmd.Env = append(os.Environ(), r.Env()...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("rabbitmqctl on %s: %v\n%s", on, err, out)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return strings.Split(first, ",")
	}
	if got := running("a3"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("running members seen from a3: %v, want %v", got, want)
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if p := d.rabbit.epmd; p == nil || p.exited() {
		t.Fatal("the cluster's epmd died with a1")
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a2 to see a1 running again", func() bool {
		return strings.Join(running("a2"), ",") == strings.Join(want, ",")
	})
	epmd := d.rabbit.epmd
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !epmd.exited() {
		t.Errorf("epmd (pid %d) still runs after Close", epmd.pid)
	}
}
