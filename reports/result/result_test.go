package result_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

const yaml = `
name: r
strategy: journal-batch
failure: broker-crash
seed: 5
topology:
  sites: [a]
  nodes: [{name: a1, site: a, broker: {store: journal, fsync: batch}}]
workload:
  destination: /queue/q
  producers: {count: 1}
  consumers: {count: 1}
  duration: 10s
faults:
  - {kind: kill, between: [1s, 2s], node: a1, restart_after: 1s}
expectations:
  lost: 0
  duplicated: "<= 1"
  acknowledged: ">= 2"
`

// history: three sends acknowledged, one lost, one duplicated; a kill.
func events() []history.Event {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var ev []history.Event
	for i, id := range []string{"m1", "m2", "m3"} {
		ms := i * 100
		ev = append(ev,
			history.Event{Time: at(ms), Type: history.Invoke, Producer: "p0", Seq: uint64(i + 1), ID: id, Attempt: 1},
			history.Event{Time: at(ms + 5), Type: history.OK, Producer: "p0", Seq: uint64(i + 1), ID: id, Attempt: 1, LatencyNS: 5e6})
	}
	ev = append(ev,
		history.Event{Time: at(50), Type: history.FaultStart, Fault: "kill a1"},
		history.Event{Time: at(900), Type: history.FaultEnd, Fault: "kill a1"},
		history.Event{Time: at(1000), Type: history.Recv, Process: "c0", Producer: "p0", Seq: 1, ID: "m1"},
		history.Event{Time: at(1001), Type: history.Recv, Process: "c0", Producer: "p0", Seq: 1, ID: "m1", Redelivered: true},
		history.Event{Time: at(1002), Type: history.Recv, Process: "c0", Producer: "p0", Seq: 3, ID: "m3"},
	)
	return ev
}

func build(t *testing.T) *result.Result {
	t.Helper()
	s, err := scenario.Parse("r.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.Resolve(s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	env := result.Collect(context.Background())
	env.Driver = "local"
	return result.New(plan, checker.Check(events(), checker.Options{}), env)
}

func TestEvaluate(t *testing.T) {
	r := build(t)
	want := []result.Expectation{
		{Metric: "lost", Condition: "== 0", Value: 1, OK: false},
		{Metric: "duplicated", Condition: "<= 1", Value: 1, OK: true},
		{Metric: "acknowledged", Condition: ">= 2", Value: 3, OK: true},
	}
	if !reflect.DeepEqual(r.Expectations, want) {
		t.Errorf("expectations\n got %+v\nwant %+v", r.Expectations, want)
	}
	if r.OK {
		t.Error("OK with a failed expectation")
	}
	if f := r.Failed(); len(f) != 1 || f[0].Metric != "lost" {
		t.Errorf("failed %+v", f)
	}
	if r.Seed != 5 || r.Strategy != "journal-batch" || r.Failure != "broker-crash" || len(r.Planned) != 1 {
		t.Errorf("header %+v", r)
	}
	if r.Verdict != result.Fail {
		t.Errorf("verdict %q, want %s", r.Verdict, result.Fail)
	}
	// No expectations, something acknowledged: OK.
	if ok := result.New(&scenario.Plan{Scenario: &scenario.Scenario{Name: "x"}}, checker.Check(events(), checker.Options{}), result.Environment{}); !ok.OK || ok.Verdict != result.Pass || len(ok.Expectations) != 0 {
		t.Errorf("no expectations: %+v", ok)
	}
}

// TestEmptyVerdict: a run in which every send was refused (a destination
// the broker does not serve) holds lost: 0 trivially; it must not pass.
func TestEmptyVerdict(t *testing.T) {
	s, err := scenario.Parse("r.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s.Expectations = s.Expectations[:1] // lost: 0 only
	plan, err := s.Resolve(s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ev []history.Event
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		ev = append(ev,
			history.Event{Time: at, Type: history.Invoke, Producer: "p0", Seq: uint64(i), ID: "m" + string(rune('0'+i)), Attempt: 1},
			history.Event{Time: at.Add(time.Millisecond), Type: history.Fail, Producer: "p0", Seq: uint64(i), ID: "m" + string(rune('0'+i)), Attempt: 1,
				Error: "unsupported destination"})
	}
	for _, c := range []*checker.Result{checker.Check(ev, checker.Options{}), checker.Check(nil, checker.Options{})} {
		r := result.New(plan, c, result.Environment{})
		if r.OK || r.Verdict != result.Empty {
			t.Fatalf("nothing acknowledged: ok %v verdict %q, want not ok and %s", r.OK, r.Verdict, result.Empty)
		}
		if len(r.Failed()) != 0 {
			t.Fatalf("the expectation lost == 0 holds, yet failed: %+v", r.Failed())
		}
		if md := r.Markdown(); !strings.Contains(md, "# r: EMPTY") || !strings.Contains(md, "nothing was acknowledged") {
			t.Errorf("summary does not say EMPTY:\n%s", md)
		}
		path := filepath.Join(t.TempDir(), result.FileName)
		if err := r.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if !strings.Contains(string(b), `"verdict": "EMPTY"`) {
			t.Errorf("result.json lacks the verdict:\n%s", b)
		}
	}
}

func TestWriteRead(t *testing.T) {
	r := build(t)
	path := filepath.Join(t.TempDir(), result.FileName)
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := result.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Lost != 1 || back.Duplicated != 1 || back.Scenario != "r" || back.Seed != 5 ||
		len(back.Faults) != 1 || back.Faults[0].Name != "kill a1" || back.Faults[0].RecoverS == nil ||
		len(back.LostSample) != 1 || back.LostSample[0].ID != "m2" || back.Environment.CPUs == 0 ||
		!reflect.DeepEqual(back.Expectations, r.Expectations) {
		t.Errorf("read back %+v", back)
	}
	// The DESIGN.md contract: these keys are at the top level of result.json.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(b)
	for _, key := range []string{"scenario", "seed", "strategy", "failure", "attempted", "acknowledged", "received",
		"lost", "duplicated", "unexpected", "recovered", "throughput", "latency_ms", "unavailable_s", "faults",
		"expectations", "environment", "lossbench_commit", "kernel", "cpus", "driver", "lost_sample"} {
		if !strings.Contains(raw, `"`+key+`":`) {
			t.Errorf("result.json has no %q", key)
		}
	}
}

func TestMarkdown(t *testing.T) {
	md := build(t).Markdown()
	for _, want := range []string{"# r: FAIL", "| lost == 0 | 1 | **FAILED** |", "| duplicated <= 1 | 1 | ok |",
		"| 3 | 3 | 2 | 1 | 1 (1 ids) |", "`m2`", "| kill a1 | 0.050 | 0.900 | 0.055 | 1 |", "driver local",
		"Dual-active: none"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

// TestDualActiveExpectation: a history in which a1 and b1 acknowledged at
// once fails dual_active_s: 0, and the summary names the nodes.
func TestDualActiveExpectation(t *testing.T) {
	s, err := scenario.Parse("r.yaml", []byte(strings.Replace(yaml, "  lost: 0\n", "  dual_active_s: 0\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	s.Expectations = s.Expectations[:1]
	plan, _ := s.Resolve(s.Seed)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ev []history.Event
	for i := 0; i < 40; i++ {
		node, ms := "a1", i*100
		if i%2 == 1 {
			node = "b1"
		}
		id := "m" + strconv.Itoa(i)
		ev = append(ev,
			history.Event{Time: t0.Add(time.Duration(ms) * time.Millisecond), Type: history.Invoke, Producer: "p0", Seq: uint64(i + 1), ID: id, Attempt: 1, Node: node},
			history.Event{Time: t0.Add(time.Duration(ms+5) * time.Millisecond), Type: history.OK, Producer: "p0", Seq: uint64(i + 1), ID: id, Attempt: 1, Node: node})
	}
	r := result.New(plan, checker.Check(ev, checker.Options{}), result.Environment{})
	if r.OK || r.DualActiveS < 3 || len(r.Failed()) != 1 || r.Failed()[0].Metric != "dual_active_s" {
		t.Fatalf("two masters: ok %v dual %.3fs failed %+v", r.OK, r.DualActiveS, r.Failed())
	}
	if md := r.Markdown(); !strings.Contains(md, "a1 and b1 from 0.100s to 3.805s") {
		t.Errorf("summary does not name the two masters:\n%s", md)
	}
}
