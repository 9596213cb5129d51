package result_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

func TestCheckExits(t *testing.T) {
	s, err := scenario.Parse("r.yaml", []byte(strings.Replace(yaml, "  lost: 0\n", "  lost: 1\n  exit: {a1: 1}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.Resolve(5)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	killed := result.NodeExit{Node: "a1", Status: -1, Signal: "killed", At: at, ByHarness: true}
	failStop := result.NodeExit{Node: "a1", Status: 1, At: at}
	other := result.NodeExit{Node: "a1", Status: 2, At: at}
	for _, tc := range []struct {
		name  string
		exps  []scenario.ExitExpectation
		exits []result.NodeExit
		known bool
		ok    bool
		value float64
	}{
		{"exited 1", s.Exits, []result.NodeExit{killed, failStop}, true, true, 1},
		{"only killed by the harness", s.Exits, []result.NodeExit{killed}, true, false, -1},
		{"once 1, once 2", s.Exits, []result.NodeExit{failStop, other}, true, false, 2},
		{"driver without exits", s.Exits, nil, false, false, -1},
		{"never, and never", []scenario.ExitExpectation{{Node: "a1", Never: true}}, []result.NodeExit{killed}, true, true, -1},
		{"never, but exited", []scenario.ExitExpectation{{Node: "a1", Never: true}}, []result.NodeExit{failStop}, true, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := result.New(plan, checker.Check(events(), checker.Options{}), result.Environment{Driver: "fake"})
			if !r.OK {
				t.Fatalf("the base result fails: %+v", r.Failed())
			}
			r.CheckExits(tc.exps, tc.exits, tc.known)
			e := r.Expectations[len(r.Expectations)-1]
			if e.Metric != "exit a1" || e.OK != tc.ok || e.Value != tc.value || r.OK != tc.ok {
				t.Fatalf("expectation %+v, result ok %v; want ok %v, value %v", e, r.OK, tc.ok, tc.value)
			}
			if !tc.known && (len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "does not report")) {
				t.Errorf("notes %q", r.Notes)
			}
			own := false
			for _, x := range tc.exits {
				own = own || x == failStop
			}
			if md := r.Markdown(); strings.Contains(md, "a1 exit status 1 at") != own || strings.Contains(md, "signal killed") {
				t.Errorf("summary of exits %v:\n%s", tc.exits, md)
			}
		})
	}
}
