package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// powerCutYAML is a one-broker journal scenario cut at 1.5 s; the consumer
// starts after the restart, so what the cut dropped is still unconsumed.
const powerCutYAML = `
name: power-%[1]s
strategy: journal-%[1]s
failure: power-cut
topology:
  sites: [a, clients]
  links:
    - [clients, a]
  nodes:
    - name: a1
      site: a
      broker: {kind: refbroker, store: journal, fsync: %[1]s}
workload:
  site: clients
  destination: /queue/lossbench
  producers: {count: 2, rate: 300, size: 256B}
  consumers: {count: 1, ack: client-individual, prefetch: 10, start_delay: 2500ms}
  duration: 3s
  recovery: {repair: all, wait: 200ms, drain: 10s, quiet: 700ms}
faults:
  - kind: power-cut
    at: 1500ms
    node: a1
    restart_after: 300ms
expectations:
  lost: "%[2]s"
`

// TestRefBrokerJournalPowerCut runs the real power cut (lazyfs): fsync
// never loses acknowledged messages, fsync batch loses none.
func TestRefBrokerJournalPowerCut(t *testing.T) {
	if refErr != nil {
		t.Skipf("refbroker does not build: %v", refErr)
	}
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: power-cut needs FUSE as root: %v", err)
	}
	for _, tc := range []struct{ fsync, lost string }{{"never", ">0"}, {"batch", "0"}} {
		t.Run(tc.fsync, func(t *testing.T) {
			sc := parse(t, fmt.Sprintf(powerCutYAML, tc.fsync, tc.lost))
			o, _ := runScenario(t, context.Background(), sc, refBin)
			checkOutputs(t, o)
			r := o.Result
			t.Logf("fsync %s: attempted %d acknowledged %d received %d lost %d duplicated %d", tc.fsync, r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Duplicated)
			if o.Skipped != "" {
				t.Fatalf("skipped: %s", o.Skipped)
			}
			if r.Acknowledged == 0 || !r.OK {
				t.Fatalf("fsync %s: lost %d of %d acknowledged, expectation lost %s not met", tc.fsync, r.Lost, r.Acknowledged, tc.lost)
			}
		})
	}
}

// TestPowerCutNodes: the driver is told which nodes a power cut may hit,
// from the plan, each once, and none when no step is a power cut.
func TestPowerCutNodes(t *testing.T) {
	sc := parse(t, strings.Replace(fmt.Sprintf(powerCutYAML, "batch", "0"), "expectations:", `  - kind: power-cut
    at: 2s
    node: a1
  - kind: kill
    at: 2500ms
    node: a1
expectations:`, 1))
	plan, err := sc.Resolve(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := PowerCutNodes(plan); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("PowerCutNodes = %q, want [a1]", got)
	}
	plan.Steps = slices.DeleteFunc(plan.Steps, func(st scenario.Step) bool { return st.Kind == scenario.PowerCut })
	if got := PowerCutNodes(plan); len(got) != 0 {
		t.Fatalf("PowerCutNodes without a power cut = %q, want none", got)
	}
	// A machine lost whose disks move to a spare loses its unsynced
	// writes: its node is cut too.
	plan.Steps = append(plan.Steps, scenario.Step{Kind: scenario.MachineLost, Target: scenario.Target{Node: "a1"}, MoveDisksTo: "a2"},
		scenario.Step{Kind: scenario.MachineLost, Target: scenario.Target{Node: "b1"}})
	if got := PowerCutNodes(plan); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("PowerCutNodes with a move = %q, want [a1]", got)
	}
}

// TestDiskFaultScenarios runs the DR matrix's disk fault scenarios on the
// real refbroker over lazyfs: an fsync EIO fails the broker stop (its log
// says exit status 1) and loses nothing acknowledged; a 1.5 s stall holds
// receipts back (the slowest waited the stall out) and loses nothing.
func TestDiskFaultScenarios(t *testing.T) {
	if refErr != nil {
		t.Skipf("refbroker does not build: %v", refErr)
	}
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: disk faults need FUSE as root: %v", err)
	}
	for _, name := range []string{"journal-fsync-eio", "journal-disk-stall"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "scenarios", "matrix", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			// Shorter recovery than the matrix runs; workload and faults as written.
			y := strings.NewReplacer("quiet: 2s", "quiet: 500ms", "wait: 1s", "wait: 300ms").Replace(string(b))
			o, _ := runScenario(t, context.Background(), parse(t, y), refBin)
			r := o.Result
			t.Logf("attempted %d acknowledged %d received %d lost %d latency max %.0f ms", r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Latency.Max)
			if o.Skipped != "" {
				t.Fatalf("skipped: %s", o.Skipped)
			}
			if !r.OK || r.Lost != 0 || r.Acknowledged == 0 {
				t.Fatalf("lost %d of %d acknowledged; expectations %+v", r.Lost, r.Acknowledged, r.Expectations)
			}
			if name == "journal-fsync-eio" {
				lb, err := os.ReadFile(filepath.Join(o.Dir, "logs", "a1.log"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(lb), "exit: exit status 1") || !strings.Contains(string(lb), "exiting without retrying") {
					t.Fatalf("a1 did not fail stop with exit 1:\n%s", lb)
				}
			}
		})
	}
}
