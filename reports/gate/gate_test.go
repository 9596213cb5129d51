package gate

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/reports/report"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

const goodBaseline = `reference: journal-batch
cells:
  - strategy: journal-batch
    failure: broker-crash
    lost: 0
    duplicated: 10
    unavailable_s: 5
  - {strategy: memory, failure: broker-crash, lost: any, duplicated: any, unavailable_s: any}
  - {strategy: sql, failure: db-lost, lost: 0, duplicated: 0, unavailable_s: 30}
throughput:
  - {strategy: journal-always, producers: 16, min_ratio: 0.5}
`

func TestParseBaseline(t *testing.T) {
	b, err := Parse("b.yaml", []byte(goodBaseline))
	if err != nil {
		t.Fatal(err)
	}
	c := b.Cell("journal-batch", "broker-crash")
	if c == nil || c.Lost.Any || c.Lost.Max != 0 || c.Duplicated.Max != 10 || c.UnavailableS.Max != 5 || c.Line != 3 {
		t.Fatalf("cell %+v", c)
	}
	if m := b.Cell("memory", "broker-crash"); m == nil || !m.Lost.Any || !m.Lost.Allows(1e9) {
		t.Fatalf("memory cell %+v", m)
	}
	if len(b.Throughput) != 1 || b.Throughput[0] != (Floor{Strategy: "journal-always", Producers: 16, MinRatio: 0.5, Line: 11}) {
		t.Fatalf("floors %+v", b.Throughput)
	}
}

// checkedIn is the baseline CI gates on.
const checkedIn = "../../scenarios/baseline.yaml"

// parseErrorCases are bad baselines and the error each must give.
var parseErrorCases = []struct{ yaml, want string }{
	{"cells:\n  - {strategy: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1, lsot: 3}\n", `b.yaml:2:73: cell: unknown key "lsot"`},
	{"cells:\n  - strategy: a\n    failure: b\n    duplicated: 0\n    unavailable_s: 1\n", `b.yaml:2:5: cell: "lost" is required`},
	{"cells:\n  - {strategy: a, failure: b, lost: some, duplicated: 0, unavailable_s: 1}\n", `b.yaml:2:37: cell: lost (a number, ">N" or "any"): expected a number >= 0, got "some"`},
	{"cells:\n  - {strategy: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1}\n  - {strategy: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1}\n", "b.yaml:3:5: cell (a, b) already given at line 2"},
	{"cells: []\nthroughput:\n  - {strategy: x, min_ratio: 1}\n", `b.yaml:3:3: throughput floors need "reference"`},
	{"cells:\n  - [a\n", "b.yaml:1: yaml: line 1: did not find expected"},
	{"cellz: []\n", `b.yaml:1:1: baseline: unknown key "cellz"`},
	// Junk: yaml.v3 says no line; the error points at the first bad byte.
	{"\x00\x01junk\xff\xfe", "b.yaml:1:1: yaml: control characters are not allowed"},
	{"cells: []\n\n  \x7f", "b.yaml:3:3: yaml: control characters are not allowed"},
	{"cells: []\nreference: \xff\xfe\n", "b.yaml:2:12: yaml: "},
}

func TestParseBaselineErrors(t *testing.T) {
	for _, tc := range parseErrorCases {
		_, err := Parse("b.yaml", []byte(tc.yaml))
		var list ErrorList
		if !errors.Is(err, ErrBaseline) || !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// measured is a hand-made measured scenario result.
func measured(name, strategy, failure string, lost, dup int, unavail float64) *report.Scenario {
	r := &result.Result{Scenario: name, Run: "r1", Strategy: strategy, Failure: failure}
	r.Lost, r.Duplicated, r.UnavailableS = lost, dup, unavail
	r.Acknowledged = 1000
	return &report.Scenario{Result: r}
}

func dualActive(s *report.Scenario, sec float64) *report.Scenario {
	s.Result.DualActiveS = sec
	return s
}

func benchOf(ratio float64) *report.Bench {
	cell := func(target string, v float64) bench.Cell {
		c := bench.Cell{Target: target}
		c.Producers, c.Size, c.MsgsPerSec = 16, 1024, v
		return c
	}
	return &report.Bench{ID: "bench-1", Report: &bench.Report{Reference: "journal-batch",
		Cells: []bench.Cell{cell("journal-batch", 1000), cell("journal-always", 1000*ratio)}}}
}

func statuses(v *Verdict) map[string]Status {
	out := map[string]Status{}
	for _, c := range v.Checks {
		out[c.Group+"/"+c.Name] = c.Status
	}
	return out
}

func TestEvaluate(t *testing.T) {
	b, err := Parse("b.yaml", []byte(goodBaseline))
	if err != nil {
		t.Fatal(err)
	}
	ok := &report.Input{Scenarios: []*report.Scenario{
		measured("jb", "journal-batch", "broker-crash", 0, 10, 4.9),
		measured("mem", "memory", "broker-crash", 5000, 3, 60),
	}, Benches: []*report.Bench{benchOf(0.6)}}
	v := Evaluate(b, ok)
	if !v.OK() || v.Count(Pass) != 9 || v.Count(Skip) != 1 {
		var sb strings.Builder
		v.WriteTable(&sb, true)
		t.Fatalf("passing run:\n%s", sb.String())
	}
	if statuses(v)["sql × db-lost/not run"] != Skip {
		t.Errorf("a baseline cell no scenario ran is not listed as skipped: %v", statuses(v))
	}

	empty := measured("jb", "journal-batch", "broker-crash", 0, 0, 0)
	empty.Result.Acknowledged = 0
	for _, tc := range []struct {
		name  string
		in    *report.Input
		check string
		why   string
	}{
		{"one lost in a zero cell", &report.Input{Scenarios: []*report.Scenario{measured("jb", "journal-batch", "broker-crash", 1, 0, 0)}},
			"journal-batch × broker-crash/jb (run r1): lost", "jb lost 1 acknowledged messages; strategy journal-batch promises none (b.yaml:3)"},
		{"duplicates over budget", &report.Input{Scenarios: []*report.Scenario{measured("jb", "journal-batch", "broker-crash", 0, 11, 0)}},
			"journal-batch × broker-crash/jb (run r1): duplicated", "duplicated 11 exceeds the budget <= 10 (b.yaml:3)"},
		{"unavailable over budget", &report.Input{Scenarios: []*report.Scenario{measured("jb", "journal-batch", "broker-crash", 0, 0, 5.5)}},
			"journal-batch × broker-crash/jb (run r1): unavailable_s", "unavailable_s 5.5 exceeds the budget <= 5"},
		{"two masters where the cell allows none", &report.Input{Scenarios: []*report.Scenario{dualActive(measured("jb", "journal-batch", "broker-crash", 0, 0, 0), 1.2)}},
			"journal-batch × broker-crash/jb (run r1): dual_active_s", "dual_active_s 1.2 exceeds the budget <= 0"},
		{"unbaselined scenario", &report.Input{Scenarios: []*report.Scenario{measured("new", "raid1", "disk-lost", 0, 0, 0)}},
			"raid1 × disk-lost/new (run r1)", `no baseline cell for strategy "raid1", failure "disk-lost": add one to b.yaml`},
		{"nothing acknowledged", &report.Input{Scenarios: []*report.Scenario{empty}},
			"journal-batch × broker-crash/jb (run r1): acknowledged", "jb acknowledged nothing: the run measured nothing"},
		{"throughput below floor", &report.Input{Benches: []*report.Bench{benchOf(0.4)}},
			"throughput/journal-always (bench-1, 16 producers, 1024 B)", "throughput ratio 0.400 below the floor 0.5 (b.yaml:11)"},
	} {
		v := Evaluate(b, tc.in)
		if v.OK() || statuses(v)[tc.check] != Fail {
			t.Errorf("%s: ok %v, statuses %v", tc.name, v.OK(), statuses(v))
			continue
		}
		var sb strings.Builder
		if err := v.WriteTable(&sb, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sb.String(), tc.why) || !strings.Contains(sb.String(), "FAIL: regressed against b.yaml") {
			t.Errorf("%s: table lacks %q:\n%s", tc.name, tc.why, sb.String())
		}
	}

	skipped := measured("pc", "journal-batch", "broker-crash", 99, 99, 99)
	skipped.Skipped = "power-cut unsupported"
	if v := Evaluate(b, &report.Input{Scenarios: []*report.Scenario{skipped}}); !v.OK() || statuses(v)["journal-batch × broker-crash/pc (run r1)"] != Skip {
		t.Errorf("a skipped scenario: %v", statuses(v))
	}
}

func TestJUnit(t *testing.T) {
	b, _ := Parse("b.yaml", []byte(goodBaseline))
	v := Evaluate(b, &report.Input{Scenarios: []*report.Scenario{measured("jb", "journal-batch", "broker-crash", 2, 0, 0)}})
	path := filepath.Join(t.TempDir(), "gate.xml")
	if err := v.WriteJUnit(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("gate.xml does not parse: %v\n%s", err, data)
	}
	if doc.Tests != len(v.Checks) || doc.Failures != 1 || doc.Skipped != v.Count(Skip) {
		t.Fatalf("tests %d failures %d skipped %d:\n%s", doc.Tests, doc.Failures, doc.Skipped, data)
	}
	var failed *junitCase
	for _, s := range doc.Suites {
		for i := range s.Cases {
			if s.Cases[i].Failure != nil {
				failed = &s.Cases[i]
			}
		}
	}
	if failed == nil || failed.Name != "jb (run r1): lost" || failed.Classname != "lossbench.gate.journal-batch.broker-crash" ||
		!strings.Contains(failed.Failure.Message, "lost 2 acknowledged") {
		t.Fatalf("failed case %+v", failed)
	}
}

// TestFloorBudget: a cell pinning a known loss (lost: ">0") passes while
// the loss is seen and fails when a run sees none: the harness must not
// lose its ability to catch a real broker losing messages.
func TestFloorBudget(t *testing.T) {
	b, err := Parse("b.yaml", []byte("reference: journal-batch\ncells:\n  - {strategy: nats-default, failure: power-cut, lost: \">0\", duplicated: any, unavailable_s: any}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Cells[0].Lost.String(); got != "> 0" {
		t.Errorf("budget %q, want > 0", got)
	}
	seen := Evaluate(b, &report.Input{Scenarios: []*report.Scenario{measured("nd", "nats-default", "power-cut", 3425, 0, 1)}})
	if !seen.OK() {
		t.Errorf("a loss that is seen fails the floor: %v", statuses(seen))
	}
	gone := Evaluate(b, &report.Input{Scenarios: []*report.Scenario{measured("nd", "nats-default", "power-cut", 0, 0, 1)}})
	var sb strings.Builder
	_ = gone.WriteTable(&sb, false)
	if gone.OK() || !strings.Contains(sb.String(), "a loss measured before is no longer seen") {
		t.Errorf("no loss where one was pinned passes:\n%s", sb.String())
	}
	if _, err := Parse("b.yaml", []byte("reference: x\ncells:\n  - {strategy: s, failure: f, lost: \">x\", duplicated: 0, unavailable_s: 0}\n")); err == nil {
		t.Error("lost: \">x\" parsed")
	}
}

// TestBaselineCoversEveryScenario: the checked-in baseline has a cell for
// every scenario of the suite and the DR matrix, so make gate and
// lossbench matrix runs are gated cell by cell (a new scenario needs its
// budget), and a throughput floor for every benched strategy but the
// reference.
func TestBaselineCoversEveryScenario(t *testing.T) {
	b, err := Load(checkedIn)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../scenarios/*/*.yaml")
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "baseline.yaml" {
			continue
		}
		s, err := scenario.Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		n++
		if b.Cell(s.Strategy, s.Failure) == nil {
			t.Errorf("%s: no baseline cell for strategy %q, failure %q in %s", f, s.Strategy, s.Failure, checkedIn)
		}
	}
	if n == 0 {
		t.Fatal("no scenarios found")
	}
	floors := map[string]bool{}
	for _, f := range b.Throughput {
		floors[f.Strategy] = true
	}
	for _, tg := range bench.DefaultTargets() {
		if tg.Name != b.Reference && !floors[tg.Name] {
			t.Errorf("bench target %s has no throughput floor in %s", tg.Name, checkedIn)
		}
	}
	for _, r := range scenario.MatrixRows {
		if r.Bench != b.Reference && !floors[r.Bench] {
			t.Errorf("row %s: its bench target %s has no throughput floor in %s", r.Name, r.Bench, checkedIn)
		}
	}
}
