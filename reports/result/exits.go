package result

import (
	"fmt"
	"time"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// NodeExit is one end of a node's broker process during the run.
type NodeExit struct {
	Node string `json:"node"`
	// Status is the exit status, -1 when a signal ended the process.
	Status int       `json:"status"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
	// ByHarness: the harness ended it (kill, stop, power cut, end of run).
	ByHarness bool `json:"by_harness,omitempty"`
}

// ExitMetric is the metric name of an exit expectation on node.
func ExitMetric(node string) string { return scenario.ExitKey + " " + node }

// CheckExits records the nodes' process ends and evaluates the scenario's
// exit expectations against them, updating the verdict. Only the ends
// the harness did not cause count. known is false when the driver does
// not report exits: every exit expectation then fails (it cannot be
// shown to hold) and a note says why. An expectation's Value is the
// status of the node's last own exit, -1 when it had none.
func (r *Result) CheckExits(exps []scenario.ExitExpectation, exits []NodeExit, known bool) {
	r.Exits = exits
	if len(exps) == 0 {
		return
	}
	if !known {
		r.Notes = append(r.Notes, fmt.Sprintf("exit expectations not checked: the %s driver does not report how nodes ended", r.Environment.Driver))
	}
	for _, e := range exps {
		var own []NodeExit
		for _, x := range exits {
			if x.Node == e.Node && !x.ByHarness {
				own = append(own, x)
			}
		}
		ok := known
		last := -1.0
		if len(own) > 0 {
			last = float64(own[len(own)-1].Status)
		}
		if e.Never {
			ok = ok && len(own) == 0
		} else {
			ok = ok && len(own) > 0
			for _, x := range own {
				ok = ok && x.Status == e.Status
			}
		}
		cond := "== " + e.String()
		if e.Never {
			cond = scenario.ExitNone
		}
		r.Expectations = append(r.Expectations, Expectation{Metric: ExitMetric(e.Node), Condition: cond, Value: last, OK: ok})
	}
	all := true
	for _, e := range r.Expectations {
		all = all && e.OK
	}
	r.Verdict = verdictOf(all, r.Acknowledged)
	r.OK = r.Verdict == Pass
}

// ownExits describes the exits the harness did not cause, for the
// summary: "a1 exit status 1 at 12:00:03.120".
func (r *Result) ownExits() []string {
	var out []string
	for _, x := range r.Exits {
		if x.ByHarness {
			continue
		}
		how := fmt.Sprintf("exit status %d", x.Status)
		if x.Signal != "" {
			how = "signal " + x.Signal
		}
		out = append(out, fmt.Sprintf("%s %s at %s", x.Node, how, x.At.Format("15:04:05.000")))
	}
	return out
}
