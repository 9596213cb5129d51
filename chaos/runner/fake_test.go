package runner

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
)

// fakeYAML: one node killed and restarted, then power-cut; nothing
// listens (the fake driver runs nothing), so the clients never connect.
const fakeYAML = `
name: fake-driver
strategy: memory
failure: broker-crash
topology:
  sites: [a]
  nodes:
    - name: a1
      site: a
      broker: {kind: refbroker, store: memory}
workload:
  destination: /queue/lossbench
  producers: {count: 1, rate: 10, size: 64B}
  consumers: {count: 1, ack: client-individual}
  duration: 800ms
  recovery: {repair: all, wait: 10ms, drain: 100ms, quiet: 50ms}
faults:
  - kind: kill
    at: 100ms
    node: a1
    restart_after: 100ms
  - kind: power-cut
    at: 400ms
    node: a1
`

// TestRunnerOnFakeDriver runs the runner's logic on driver.Fake, no
// binary built: it is told the scenario and the power-cut nodes, starts
// the topology, plays the timeline in order, skips what the driver cannot
// do, repairs and closes the driver.
func TestRunnerOnFakeDriver(t *testing.T) {
	sc := parse(t, fakeYAML)
	fake := driver.NewFake()
	var got driver.Config
	o, err := Run(context.Background(), sc, Options{Out: t.TempDir(), RunID: "test", SendTimeout: 200 * time.Millisecond,
		Progress: NewProgress(testWriter{t}, false),
		NewDriver: func(_ context.Context, cfg driver.Config) (driver.Driver, error) {
			got = cfg
			return fake, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Scenario != "fake-driver" || got.RunID != "test" || !slices.Equal(got.PowerCutNodes, []string{"a1"}) || len(got.Topology.Nodes) != 1 {
		t.Errorf("driver config: scenario %q run %q power-cut nodes %q, %d nodes", got.Scenario, got.RunID, got.PowerCutNodes, len(got.Topology.Nodes))
	}
	if want := "start a1; kill a1; start a1"; !strings.HasPrefix(fake.String(), want) {
		t.Errorf("calls %q, want them to begin %q", fake.String(), want)
	}
	if calls := fake.Calls(); calls[len(calls)-1] != "close" {
		t.Errorf("last call %q, want close", calls[len(calls)-1])
	}
	if !strings.Contains(o.Skipped, "power-cut is unsupported by the fake driver") {
		t.Errorf("skipped %q, want the power cut unsupported", o.Skipped)
	}
	if o.Result == nil || o.Result.Environment.Driver != "fake" {
		t.Errorf("result environment does not name the fake driver: %+v", o.Result)
	}
}
