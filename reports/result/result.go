// Package result is a scenario run's verdict as users and CI read it:
// result.json (the fields shared/DESIGN.md promises) and summary.md. It
// joins the scenario's plan, the checker's numbers, the expectations and
// the environment the run happened in.
//
// A run's folder holds, per scenario (file names are constants here and in
// package scenario):
//
//	plan.json      the resolved scenario (scenario.PlanFile)
//	history.jsonl  every client operation (HistoryFile)
//	result.json    this package's Result (FileName)
//	summary.md     Result.Markdown (SummaryFile)
package result

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// File names in a scenario's output folder.
const (
	FileName    = "result.json"
	SummaryFile = "summary.md"
	HistoryFile = "history.jsonl"
)

// Format is the version of result.json's layout; it grows when a field
// changes meaning (adding fields does not change it).
const Format = 1

// Result is result.json. The checker's numbers are embedded, so their JSON
// fields (attempted, acknowledged, lost, latency_ms, faults, ...) sit at
// the top level beside scenario, seed and expectations.
type Result struct {
	Format      int    `json:"format"`
	Scenario    string `json:"scenario"`
	Description string `json:"description,omitempty"`
	File        string `json:"file,omitempty"`
	// Run is the run id (the folder above the scenario's), if any.
	Run      string `json:"run,omitempty"`
	Seed     int64  `json:"seed"`
	Strategy string `json:"strategy"`
	Failure  string `json:"failure"`
	// Matrix is the scenario's DR matrix cell (scenario.Scenario.Cell);
	// empty in results written before it existed (see CellOf).
	Matrix scenario.Cell `json:"matrix"`
	// OK is true when every expectation holds and something was
	// acknowledged.
	OK bool `json:"ok"`
	// Verdict is Pass, Fail or Empty.
	Verdict string `json:"verdict"`

	checker.Result

	// Planned is the fault timeline the plan asked for; the embedded
	// Faults are what the history recorded.
	Planned      []scenario.Step `json:"planned_faults"`
	Expectations []Expectation   `json:"expectations"`
	// Exits are the ends of the nodes' broker processes, if the driver
	// reports them (see CheckExits).
	Exits       []NodeExit  `json:"node_exits,omitempty"`
	Environment Environment `json:"environment"`
	// Notes are things a reader must know, e.g. a fault the driver does
	// not support and skipped.
	Notes []string `json:"notes,omitempty"`
}

// Verdicts, result.json's "verdict".
const (
	// Pass: every expectation holds.
	Pass = "PASS"
	// Fail: an expectation does not hold.
	Fail = "FAIL"
	// Empty: nothing was acknowledged, so the run measured nothing
	// (lost 0 of 0 holds trivially); it fails whatever its expectations
	// say. A destination the broker refuses, a broker that never came up
	// or producers that never connected end this way.
	Empty = "EMPTY"
)

// EmptyText explains the Empty verdict to a reader.
const EmptyText = "nothing was acknowledged: the run measured nothing, whatever its expectations say (look at the notes, the history's send errors and the broker logs)"

// verdictOf is the verdict of a run whose expectations all hold (ok) or
// not, and that acknowledged acked messages.
func verdictOf(ok bool, acked int) string {
	switch {
	case acked == 0:
		return Empty
	case ok:
		return Pass
	}
	return Fail
}

// Expectation is one evaluated expectation.
type Expectation struct {
	Metric    string  `json:"metric"`
	Condition string  `json:"condition"`
	Value     float64 `json:"value"`
	OK        bool    `json:"ok"`
}

// Evaluate checks each expectation against the checker's result. An
// expectation on a metric the checker does not know fails (it cannot be
// shown to hold).
func Evaluate(exps []scenario.Expectation, c *checker.Result) []Expectation {
	out := []Expectation{}
	for _, e := range exps {
		v, known := c.Metric(e.Metric)
		out = append(out, Expectation{Metric: e.Metric, Condition: e.Condition.String(), Value: v,
			OK: known && e.Condition.Eval(v)})
	}
	return out
}

// New builds the result of a run of plan whose history gave c.
func New(plan *scenario.Plan, c *checker.Result, env Environment) *Result {
	s := plan.Scenario
	r := &Result{
		Format:      Format,
		Scenario:    s.Name,
		Description: s.Description,
		File:        s.File,
		Seed:        plan.Seed,
		Strategy:    s.Strategy,
		Failure:     s.Failure,
		Matrix:      s.Cell(),
		Result:      *c,
		Planned:     plan.Steps,
		Environment: env,
	}
	if r.Planned == nil {
		r.Planned = []scenario.Step{}
	}
	r.Expectations = Evaluate(s.Expectations, c)
	ok := true
	for _, e := range r.Expectations {
		ok = ok && e.OK
	}
	r.Verdict = verdictOf(ok, c.Acknowledged)
	r.OK = r.Verdict == Pass
	return r
}

// Failed returns the expectations that do not hold.
func (r *Result) Failed() []Expectation {
	var out []Expectation
	for _, e := range r.Expectations {
		if !e.OK {
			out = append(out, e)
		}
	}
	return out
}

// WriteFile writes r as indented JSON to path.
func (r *Result) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	return nil
}

// ReadFile reads a result.json.
func ReadFile(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("result: %s: %w", path, err)
	}
	if r.Format > Format {
		return nil, fmt.Errorf("result: %s: format %d is newer than this lossbench reads (%d)", path, r.Format, Format)
	}
	if r.Verdict == "" { // written before verdicts
		r.Verdict = verdictOf(r.OK, r.Acknowledged)
		r.OK = r.Verdict == Pass
	}
	return &r, nil
}

// CellOf is r's DR matrix cell; for a result written before result.json
// carried it, derived from its strategy and failure.
func (r *Result) CellOf() scenario.Cell {
	if r.Matrix.Column != "" {
		return r.Matrix
	}
	s := scenario.Scenario{Strategy: r.Strategy, Failure: r.Failure}
	return s.Cell()
}
