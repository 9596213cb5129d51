package scenario_test

import (
	"path/filepath"
	"testing"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestEveryScenarioHasAMatrixCell: every file of the suite and of the
// matrix names (or implies) a row of the DR matrix, so `lossbench matrix`
// and the report place it; a scenario whose strategy no row knows needs a
// `matrix: {strategy: ROW, failure: COLUMN}` key. (Peer brokers'
// scenarios, scenarios/peers, may stay rows of their own.)
func TestEveryScenarioHasAMatrixCell(t *testing.T) {
	suite, _ := filepath.Glob("../suite/*.yaml")
	matrix, _ := filepath.Glob("../matrix/*.yaml")
	files := append(suite, matrix...)
	if len(suite) == 0 || len(matrix) == 0 {
		t.Fatalf("no scenario files: %v", files)
	}
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		c := s.Cell()
		if _, ok := scenario.LookupRow(c.Row); !ok {
			t.Errorf("%s: strategy %q is in no row of the DR matrix: add matrix: {strategy: ROW, failure: %s} with ROW one of %v", f, s.Strategy, s.Failure, scenario.MatrixRowNames())
		}
	}
}

func TestCell(t *testing.T) {
	for _, tc := range []struct {
		strategy, failure string
		m                 *scenario.Matrix
		want              scenario.Cell
	}{
		{"journal-batch", "broker-crash", nil, scenario.Cell{Row: "journal-batch", Column: "broker-crash", Bench: "journal-batch"}},
		{"jdbc-lease-postgres", "partition", nil, scenario.Cell{Row: "jdbc", Column: "partition", Bench: "jdbc-lease-postgres"}},
		{"jdbc-pg-async-standby", "db-lost", nil, scenario.Cell{Row: "jdbc-cluster-async", Column: "db-lost", Bench: "jdbc-pg-async-standby"}},
		{"replicated-async", "site-lost", nil, scenario.Cell{Row: "replicated-async", Column: "site-lost", Bench: "replicated-async"}},
		{"kahadb", "broker-crash", nil, scenario.Cell{Row: "", Column: "broker-crash", Bench: "kahadb"}},
		{"kahadb", "broker-crash", &scenario.Matrix{Strategy: "journal-always", Failure: "power-cut", Bench: "activemq-kahadb"},
			scenario.Cell{Row: "journal-always", Column: "power-cut", Bench: "activemq-kahadb"}},
	} {
		s := &scenario.Scenario{Strategy: tc.strategy, Failure: tc.failure, Matrix: tc.m}
		if got := s.Cell(); got != tc.want {
			t.Errorf("%s/%s %+v: cell %+v, want %+v", tc.strategy, tc.failure, tc.m, got, tc.want)
		}
	}
	if r, _ := scenario.LookupRow("jdbc"); r.Applies("disk-lost") || !r.Applies("db-lost") {
		t.Errorf("jdbc: disk-lost must not apply, db-lost must")
	}
}
