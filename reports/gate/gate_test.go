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
  - row: journal-batch
    failure: broker-crash
    lost: 0
    duplicated: 10
    unavailable_s: 5
  - {row: memory, failure: broker-crash, lost: any, duplicated: any, unavailable_s: any}
  - {row: sql, failure: db-lost, lost: 0, duplicated: 0, unavailable_s: 30}
throughput:
  - {strategy: journal-always, producers: 16, min_ratio: 0.5}
`

func TestParseBaseline(t *testing.T) {
	b, err := Parse("b.yaml", []byte(goodBaseline))
	if err != nil {
		t.Fatal(err)
	}
	c := b.Cell("journal-batch", "broker-crash", "journal-batch")
	if c == nil || c.Lost.Any || c.Lost.Max != 0 || c.Duplicated.Max != 10 || c.UnavailableS.Max != 5 || c.Line != 3 {
		t.Fatalf("cell %+v", c)
	}
	if m := b.Cell("memory", "broker-crash", ""); m == nil || !m.Lost.Any || !m.Lost.Allows(1e9) {
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
	{"cells:\n  - {row: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1, lsot: 3}\n", `b.yaml:2:68: cell: unknown key "lsot"`},
	{"cells:\n  - row: a\n    failure: b\n    duplicated: 0\n    unavailable_s: 1\n", `b.yaml:2:5: cell: "lost" is required`},
	{"cells:\n  - {row: a, failure: b, lost: some, duplicated: 0, unavailable_s: 1}\n", `b.yaml:2:32: cell: lost (a number, ">N" or "any"): expected a number >= 0, got "some"`},
	{"cells:\n  - {row: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1}\n  - {row: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1}\n", "b.yaml:3:5: cell a × b already given at line 2"},
	{"cells:\n  - {row: a, failure: b, strategy: s, lost: 0, duplicated: 0, unavailable_s: 1}\n  - {row: a, failure: b, strategy: s, lost: 0, duplicated: 0, unavailable_s: 1}\n", "b.yaml:3:5: cell a × b [s] already given at line 2"},
	// The format before cells were keyed by the DR matrix's row.
	{"cells:\n  - {strategy: a, failure: b, lost: 0, duplicated: 0, unavailable_s: 1}\n", `b.yaml:2:5: cell: "row" is required`},
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

// measured is a hand-made measured scenario result, in the row named like
// its strategy.
func measured(name, strategy, failure string, lost, dup int, unavail float64) *report.Scenario {
	return measuredIn(name, strategy, strategy, failure, lost, dup, unavail)
}

// measuredIn is measured placed in row.
func measuredIn(name, row, strategy, failure string, lost, dup int, unavail float64) *report.Scenario {
	r := &result.Result{Scenario: name, Run: "r1", Strategy: strategy, Failure: failure,
		Matrix: scenario.Cell{Row: row, Column: failure, Bench: strategy}}
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
			"raid1 × disk-lost/new (run r1)", `no baseline cell for row "raid1", failure "disk-lost" (strategy "raid1"): add one to b.yaml`},
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
	b, err := Parse("b.yaml", []byte("reference: journal-batch\ncells:\n  - {row: nats-default, failure: power-cut, lost: \">0\", duplicated: any, unavailable_s: any}\n"))
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
	if _, err := Parse("b.yaml", []byte("reference: x\ncells:\n  - {row: s, failure: f, lost: \">x\", duplicated: 0, unavailable_s: 0}\n")); err == nil {
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
		c := s.Cell()
		if c.Row == "" { // a row of its own, as the report gives it
			c.Row = s.Strategy
		}
		if b.Cell(c.Row, c.Column, s.Strategy) == nil {
			t.Errorf("%s: no baseline cell for row %q, failure %q (strategy %q) in %s", f, c.Row, c.Column, s.Strategy, checkedIn)
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

// rowsBaseline has two rows sharing a failure and a strategy name (a
// replicated pair placed by its matrix: key in the sync row, lost 0, and
// in the async row, loss allowed), and a cell narrowed to one strategy
// beside its row's other.
const rowsBaseline = `cells:
  - {row: replicated-sync, failure: site-lost, lost: 0, duplicated: 0, unavailable_s: 10}
  - {row: replicated-async, failure: site-lost, lost: any, duplicated: any, unavailable_s: any}
  - {row: replicated-sync, failure: partition, lost: 0, duplicated: 0, unavailable_s: 10}
  - {row: replicated-sync, failure: partition, strategy: replicated-no-witness, lost: any, duplicated: any, unavailable_s: any}
`

// TestGateKeyedByRow: the gate judges a run by its DR matrix row, not by
// its scenario's strategy: the same strategy and failure in two rows get
// each its row's budget, and a regression in one row fails that row's
// cell only; a cell narrowed to a strategy takes that strategy's runs
// and leaves the others of its row and column to the row's cell.
func TestGateKeyedByRow(t *testing.T) {
	b, err := Parse("b.yaml", []byte(rowsBaseline))
	if err != nil {
		t.Fatal(err)
	}
	failed := func(in *report.Input) []string {
		var out []string
		for _, c := range Evaluate(b, in).Checks {
			if c.Status == Fail {
				out = append(out, c.Group+"/"+c.Name)
			}
		}
		return out
	}
	sync := func(lost int) *report.Scenario {
		return measuredIn("sync-site", "replicated-sync", "replicated", "site-lost", lost, 0, 1)
	}
	async := func(lost int) *report.Scenario {
		return measuredIn("async-site", "replicated-async", "replicated", "site-lost", lost, 0, 1)
	}
	if f := failed(&report.Input{Scenarios: []*report.Scenario{sync(0), async(0)}}); len(f) != 0 {
		t.Errorf("nothing lost: failed %v", f)
	}
	// The same loss in each row: only the sync row regressed.
	if f := failed(&report.Input{Scenarios: []*report.Scenario{sync(7), async(7)}}); len(f) != 1 || f[0] != "replicated-sync × site-lost/sync-site (run r1): lost" {
		t.Errorf("7 lost in both rows: failed %v, want the sync row's lost only", f)
	}
	if f := failed(&report.Input{Scenarios: []*report.Scenario{sync(0), async(500)}}); len(f) != 0 {
		t.Errorf("a loss in the async row: failed %v", f)
	}

	witness := measuredIn("witness", "replicated-sync", "replicated", "partition", 3, 0, 1)
	noWitness := measuredIn("no-witness", "replicated-sync", "replicated-no-witness", "partition", 300, 0, 1)
	if f := failed(&report.Input{Scenarios: []*report.Scenario{witness, noWitness}}); len(f) != 1 || f[0] != "replicated-sync × partition/witness (run r1): lost" {
		t.Errorf("partition: failed %v, want the witness run's lost only", f)
	}
	v := Evaluate(b, &report.Input{Scenarios: []*report.Scenario{noWitness}})
	if st := statuses(v); st["replicated-sync × partition [replicated-no-witness]/no-witness (run r1): lost"] != Pass ||
		st["replicated-sync × partition/not run"] != Skip {
		t.Errorf("the narrowed cell: %v", st)
	}
}
