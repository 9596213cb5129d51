package local

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestNATSRoutesThroughLinks starts a cluster of three nats-servers, one
// per site (a, b, c): each server has routes to the two others, and a cut
// between sites b and c takes the route between b1 and c1 down while a1
// keeps both, until the heal brings it back. The routes go through the
// link proxies.
func TestNATSRoutesThroughLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: three nats-servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := peers.NATSServer(ctx)
	if err != nil {
		t.Skipf("no nats-server: %v", err)
	}
	topo := scenario.Topology{
		Sites: []scenario.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "clients"}},
		Links: []scenario.Link{{A: "clients", B: "a"}, {A: "clients", B: "b"}, {A: "clients", B: "c"},
			{A: "a", B: "b"}, {A: "a", B: "c"}, {A: "b", B: "c"}},
	}
	for _, n := range [][2]string{{"a1", "a"}, {"b1", "b"}, {"c1", "c"}} {
		topo.Nodes = append(topo.Nodes, scenario.Node{Name: n[0], Site: n[1],
			Broker: scenario.Broker{Kind: scenario.NATS, Store: "jetstream"}})
	}
	d := newDriverWith(t, topo, func(o *Options) { o.NATSServerBin = bin })
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	// routes is the sorted names of the servers node has a route to.
	routes := func(node string) []string {
		resp, err := hc.Get("http://" + d.nodes[node].admin + "/routez")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var rz struct {
			Routes []struct {
				RemoteName string `json:"remote_name"`
			} `json:"routes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&rz); err != nil {
			return nil
		}
		var names []string
		for _, r := range rz.Routes {
			if !slices.Contains(names, r.RemoteName) {
				names = append(names, r.RemoteName)
			}
		}
		slices.Sort(names)
		return names
	}
	see := func(node string, want ...string) {
		t.Helper()
		waitFor(t, node+" routed to exactly "+strings.Join(want, ","), func() bool { return slices.Equal(routes(node), want) })
	}
	see("a1", "b1", "c1")
	see("b1", "a1", "c1")
	if err := d.Cut(ctx, "b", "c"); err != nil {
		t.Fatal(err)
	}
	see("b1", "a1")
	see("c1", "a1")
	see("a1", "b1", "c1")
	if err := d.Heal(ctx, "b", "c"); err != nil {
		t.Fatal(err)
	}
	see("b1", "a1", "c1")
}
