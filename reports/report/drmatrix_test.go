package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestDRMatrix places runs in the DR matrix by their cell: the worst of
// several seeds, a cell whose run missed its expectations, an errored run,
// not-applicable and empty cells, a scenario in no row, and the rows'
// throughput from the bench.
func TestDRMatrix(t *testing.T) {
	a := fakeResult("shared-disk-lost", "shared-store", "disk-lost", 100, 1)
	b := fakeResult("shared-disk-lost", "shared-store", "disk-lost", 300, 2)
	b.Seed = 8
	missed := fakeResult("pg-killed", "jdbc-postgres", "db-lost", 5, 12)
	missed.Expectations = []result.Expectation{{Metric: "lost", Condition: "== 0", Value: 5}}
	missed.OK, missed.Verdict = false, result.Fail
	dual := fakeResult("lease-cut", "jdbc-lease-postgres", "partition", 0, 3)
	dual.DualActiveS = 1.5
	rpo := 2.5
	b.LossAttribution.RPOS = &rpo
	other := fakeResult("kaha-kill", "kahadb", "broker-crash", 0, 1)
	cj := fakeResult("cjdbc-lost", "cjdbc-postgres-all", "db-lost", 0, 1)
	var in Input
	for _, r := range []*result.Result{a, b, missed, dual, other, cj} {
		in.Scenarios = append(in.Scenarios, &Scenario{Dir: "/x/" + r.Scenario, Result: r})
	}
	in.Errors = []RunError{{Scenario: "mirror-lost", Seed: 3, Row: "journal-mirrored", Column: "disk-lost", Error: "broker did not start"}}
	rep := bench.Report{Reference: "journal-batch"}
	for _, tg := range []string{"journal-batch", "jdbc-postgres", "cjdbc-2postgres-all", "replicated-fsynced"} {
		for _, n := range []int{1, 16} {
			c := bench.Cell{Target: tg, RatioToReference: 0.5, DiskFraction: 0.25}
			c.Producers, c.MsgsPerSec, c.P99 = n, 1000*float64(n), 3
			rep.Cells = append(rep.Cells, c)
		}
	}
	in.Benches = []*Bench{{ID: "bench", Report: &rep}}
	m := NewDRMatrix(&in, DefaultWaitAfter)

	if len(m.Rows) != len(scenario.MatrixRows)+1 || strings.Join(m.Columns[:8], ",") != "broker-crash,power-cut,disk-lost,disk-error,machine-lost,db-lost,site-lost,partition" {
		t.Fatalf("rows %v columns %v", m.Rows, m.Columns)
	}
	c := m.Cell("shared-storage", "disk-lost")
	if c.State != StateMeasured || len(c.Runs) != 2 || c.Lost != 300 || c.Worst.Result != b || c.RPOS == nil || *c.RPOS != 2.5 || c.UnavailableS != 2 {
		t.Errorf("shared-storage × disk-lost: %+v", c)
	}
	if c := m.Cell("jdbc", "db-lost"); !c.Differs() || c.Outcome != Loss || !strings.Contains(c.Missed[0], "lost == 0, got 5") {
		t.Errorf("jdbc × db-lost should differ from its hypothesis: %+v", c)
	}
	if c := m.Cell("jdbc", "partition"); c.DualActive != 1.5 || c.Differs() || c.Lost != 0 {
		t.Errorf("jdbc × partition: %+v", c)
	}
	if c := m.Cell("journal-mirrored", "disk-lost"); c.State != StateError || len(c.Errors) != 1 {
		t.Errorf("errored cell: %+v", c)
	}
	if m.Cell("jdbc", "disk-lost").State != StateNA || m.Cell("journal-batch", "site-lost").State != StateNoScenario {
		t.Errorf("n/a or no-scenario cell wrong")
	}
	if len(m.Extra) != 1 || m.Extra[0] != "kahadb" || m.Rows[len(m.Rows)-1] != "kahadb" || len(m.Cell("kahadb", "broker-crash").Runs) != 1 {
		t.Errorf("a strategy in no row gets its own: extra %v rows %v", m.Extra, m.Rows)
	}
	if tp := m.Throughput["jdbc"]; tp == nil || tp.Target != "jdbc-postgres" || tp.ByProducers[16].MsgsPerSec != 16000 {
		t.Errorf("jdbc throughput %+v", tp)
	}
	// No target named like a scenario's strategy or row: the row's own
	// (scenario.MatrixRow.Bench), with or without scenarios in the row.
	for row, want := range map[string]string{"c-jdbc": "cjdbc-2postgres-all", "replicated-sync": "replicated-fsynced"} {
		if tp := m.Throughput[row]; tp == nil || tp.Target != want {
			t.Errorf("%s throughput %+v, want target %s", row, tp, want)
		}
	}
	if tp := m.Throughput["shared-storage"]; tp != nil {
		t.Errorf("shared-storage throughput %+v from a bench without its target", tp)
	}
	if w, ok := m.WorstLoss("shared-storage"); !ok || w != 0.3 {
		t.Errorf("worst loss of shared-storage %v %v", w, ok)
	}
	var out bytes.Buffer
	if err := WriteShort(&out, m); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"300(30.0%)", "5(0.5%) !", "0 DUAL", "ERROR", "n/a", "0.50/0.50", "not benched",
		"! jdbc × db-lost: differs from its hypothesis: pg-killed seed 7: lost == 0, got 5",
		"ERROR journal-mirrored × disk-lost: mirror-lost seed 3: broker did not start",
		"kahadb: not a strategy of the DR matrix (a peer broker?): a row of its own"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("short matrix lacks %q:\n%s", s, out.String())
		}
	}
}
