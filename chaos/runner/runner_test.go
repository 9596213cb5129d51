package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/local"
	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// fakeBin is fakebroker (an in-memory STOMP broker), refBin refbroker,
// both built once for these tests; refErr says why refbroker is missing.
var (
	fakeBin, refBin string
	refErr          error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lossbench-runner-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fakeBin = filepath.Join(dir, "fakebroker")
	if b, err := exec.Command("go", "build", "-o", fakeBin, "github.com/lossbench/lossbench/chaos/workload/fakebroker/cmd/fakebroker").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fakebroker: %v\n%s", err, b)
		os.Exit(2)
	}
	refBin, refErr = FindBroker(context.Background(), "", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func parse(t *testing.T, yaml string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func runScenario(t *testing.T, ctx context.Context, sc *scenario.Scenario, bin string) (*Outcome, string) {
	t.Helper()
	out := t.TempDir()
	o, err := Run(ctx, sc, Options{Out: out, RunID: "test", BrokerBin: bin, SendTimeout: 2 * time.Second,
		Progress: NewProgress(testWriter{t}, false)})
	if err != nil {
		t.Fatal(err)
	}
	return o, out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// crashYAML is a one-broker scenario whose consumer starts only after the
// broker was killed and restarted, so a memory store must lose what was
// queued.
const crashYAML = `
name: crash
strategy: memory
failure: broker-crash
topology:
  sites: [a, clients]
  links:
    - [clients, a]
  nodes:
    - name: a1
      site: a
      broker: %s
workload:
  site: clients
  destination: /queue/lossbench
  producers: {count: 2, rate: 300, size: 128B}
  consumers: {count: 1, ack: client-individual, prefetch: 10, start_delay: 2500ms}
  duration: 3s
  recovery: {repair: all, wait: 200ms, drain: 10s, quiet: 700ms}
faults:
  - kind: kill
    at: 1500ms
    node: a1
    restart_after: 300ms
expectations:
  lost: ">0"
`

func checkOutputs(t *testing.T, o *Outcome) []history.Event {
	t.Helper()
	for _, f := range []string{scenario.PlanFile, result.HistoryFile, result.FileName, result.SummaryFile, "logs/a1.log"} {
		if _, err := os.Stat(filepath.Join(o.Dir, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	ev, err := history.ReadFile(filepath.Join(o.Dir, result.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var starts, ends int
	for _, e := range ev {
		switch e.Type {
		case history.FaultStart:
			starts++
		case history.FaultEnd:
			ends++
		}
	}
	if starts == 0 || starts != ends {
		t.Errorf("%d fault-start and %d fault-end events", starts, ends)
	}
	return ev
}

func TestCrashOfMemoryBrokerLosesMessages(t *testing.T) {
	sc := parse(t, fmt.Sprintf(crashYAML, `{kind: command, command: [`+fakeBin+`, --listen, "{listen}"]}`))
	o, _ := runScenario(t, context.Background(), sc, "")
	checkOutputs(t, o)
	r := o.Result
	t.Logf("attempted %d acknowledged %d received %d lost %d", r.Attempted, r.Acknowledged, r.Received, r.Lost)
	if r.Lost == 0 || !r.OK {
		t.Fatalf("lost %d, ok %v: a crashed memory broker must lose its queue", r.Lost, r.OK)
	}
	if len(r.Faults) != 1 || r.Faults[0].Name != "kill a1" {
		t.Fatalf("faults %+v", r.Faults)
	}
}

func TestRefBrokerMemoryCrashLoses(t *testing.T) {
	if refErr != nil {
		t.Skipf("refbroker does not build: %v", refErr)
	}
	sc := parse(t, fmt.Sprintf(crashYAML, `{kind: refbroker, store: memory}`))
	o, _ := runScenario(t, context.Background(), sc, refBin)
	checkOutputs(t, o)
	r := o.Result
	t.Logf("attempted %d acknowledged %d received %d lost %d throughput %.0f", r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Throughput)
	if r.Lost == 0 {
		t.Fatal("refbroker's memory store lost nothing in a crash")
	}
}

func TestRefBrokerJournalBatchKill9LosesNothing(t *testing.T) {
	if refErr != nil {
		t.Skipf("refbroker does not build: %v", refErr)
	}
	sc := parse(t, `
name: journal-batch-kill9
strategy: journal-batch
failure: broker-crash
topology:
  sites: [a, clients]
  links:
    - [clients, a]
  nodes:
    - name: a1
      site: a
      broker: {kind: refbroker, store: journal, fsync: batch}
  disks:
    - {name: a1-data, node: a1}
workload:
  site: clients
  destination: /queue/lossbench
  producers: {count: 4, rate: 0, size: 512B}
  consumers: {count: 1, ack: client-individual, prefetch: 50, start_delay: 1s}
  duration: 3s
  recovery: {repair: all, wait: 200ms, drain: 20s, quiet: 1s}
faults:
  - kind: kill
    at: 1200ms
    node: a1
    restart_after: 300ms
  - kind: kill
    at: 2200ms
    node: a1
    restart_after: 300ms
expectations:
  lost: 0
  unexpected: 0
  acknowledged: ">0"
`)
	o, _ := runScenario(t, context.Background(), sc, refBin)
	checkOutputs(t, o)
	r := o.Result
	t.Logf("attempted %d acknowledged %d received %d lost %d duplicated %d throughput %.0f", r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Duplicated, r.Throughput)
	if r.Lost != 0 || r.Acknowledged == 0 || !r.OK {
		t.Fatalf("lost %d of %d acknowledged (ok %v): fsync batch must keep every receipted message", r.Lost, r.Acknowledged, r.OK)
	}
}

func TestPowerCutIsSkippedLocally(t *testing.T) {
	sc := parse(t, `
name: power
strategy: journal-never
failure: power-cut
topology:
  sites: [a, clients]
  links:
    - [clients, a]
  nodes:
    - name: a1
      site: a
      broker: {kind: command, command: [`+fakeBin+`, --listen, "{listen}"]}
workload:
  site: clients
  destination: /queue/lossbench
  producers: {count: 1, rate: 100, size: 64B}
  consumers: {count: 1, ack: client-individual}
  duration: 1s
  recovery: {repair: all, wait: 100ms, drain: 3s, quiet: 300ms}
faults:
  - kind: power-cut
    at: 300ms
    node: a1
    restart_after: 100ms
expectations:
  lost: ">0"
`)
	o, _ := runScenario(t, context.Background(), sc, "")
	if lazyfs.Available() == nil {
		// FUSE as root: the node's data folder is on lazyfs and the
		// power cut is played (TestRefBrokerJournalPowerCut measures it).
		if o.Skipped != "" {
			t.Fatalf("power-cut skipped with FUSE available: %q", o.Skipped)
		}
		return
	}
	if !strings.Contains(o.Skipped, "unsupported by the local driver") {
		t.Fatalf("skipped %q", o.Skipped)
	}
}

func TestInterruptStopsEverything(t *testing.T) {
	sc := parse(t, fmt.Sprintf(crashYAML, `{kind: command, command: [`+fakeBin+`, --listen, "{listen}"]}`))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	out := t.TempDir()
	t0 := time.Now()
	_, err := Run(ctx, sc, Options{Out: out, RunID: "test", Progress: NewProgress(testWriter{t}, false)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	if d := time.Since(t0); d > 8*time.Second {
		t.Fatalf("interrupted run took %s to stop", d)
	}
	ents, _ := os.ReadDir(filepath.Join(out, local.StateSubdir))
	if len(ents) != 0 {
		t.Fatalf("state files left after an interrupted run: %v", ents)
	}
}

// TestNeeds: exit expectations, restart arguments and destroying a
// database's data are asked of the driver (driver.Config.Needs); a plain scenario asks nothing.
func TestNeeds(t *testing.T) {
	sc := &scenario.Scenario{}
	if n := Needs(sc); len(n) != 0 {
		t.Fatalf("plain scenario needs %v", n)
	}
	sc.Exits = []scenario.ExitExpectation{{}}
	sc.Workload.Recovery.RestartArgs = map[string][]string{"a1": {"--repair"}}
	if n := Needs(sc); len(n) != 2 || n[0] != driver.NeedExitStatus || n[1] != driver.NeedRestartArgs {
		t.Fatalf("needs %v", n)
	}
	// A db-data-lost fault asks for a database wipe.
	sc.Faults = []scenario.Fault{{Kind: scenario.DBLost}, {Kind: scenario.DBDataLost}}
	if n := Needs(sc); len(n) != 3 || n[2] != driver.NeedDatabaseWipe {
		t.Fatalf("needs %v", n)
	}
}

// TestWipeDatabases: the driver is told which database servers a
// db-data-lost step destroys, in plan order, each once, and not those a
// db-lost only kills.
func TestWipeDatabases(t *testing.T) {
	plan := &scenario.Plan{Steps: []scenario.Step{
		{Kind: scenario.DBLost, Target: scenario.Target{Database: "pg"}},
		{Kind: scenario.DBDataLost, Target: scenario.Target{Database: "gal-c"}},
		{Kind: scenario.DBDataLost, Target: scenario.Target{Database: "gal"}},
		{Kind: scenario.DBDataLost, Target: scenario.Target{Database: "gal-c"}},
	}}
	if got := WipeDatabases(plan); !slices.Equal(got, []string{"gal-c", "gal"}) {
		t.Fatalf("WipeDatabases = %q, want [gal-c gal]", got)
	}
}
