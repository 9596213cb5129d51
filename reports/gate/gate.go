// Package gate is the CI loss-regression gate: it compares a run's
// results (result.json per scenario, bench.json) with a checked-in
// baseline (scenarios/baseline.yaml) and says what regressed.
//
// A baseline names, per cell of the DR matrix (its row, the strategy of
// scenario.MatrixRows a run's `matrix:` key places it in, and its failure
// column), the acknowledged messages it may lose (0 for every strategy
// that promises durability), the duplicates and the seconds of
// unavailability it may show, each a number or "any"; and per bench
// target a throughput floor as a ratio to a reference target measured in
// the same bench run (absolute numbers are meaningless on a shared
// machine):
//
//	reference: journal-batch
//	cells:
//	  - {row: journal-batch, failure: broker-crash, lost: 0, duplicated: 200, unavailable_s: 10, dual_active_s: 0}
//	  - {row: memory, failure: broker-crash, lost: any, duplicated: any, unavailable_s: any}
//	  - {row: replicated-sync, failure: partition, strategy: replicated-no-witness, lost: any, duplicated: any, unavailable_s: any}
//	throughput:
//	  - {strategy: journal-always, producers: 16, min_ratio: 0.05}
//
// A cell's optional strategy narrows it to the runs of scenarios with that
// `strategy:`, for a cell holding strategies with different promises.
//
// dual_active_s (seconds with two masters acknowledging) is optional per
// cell and defaults to 0: no strategy may have two masters unless its cell
// says so.
//
// A scenario whose cell the baseline does not name fails the gate (a new
// scenario must be given a budget, not silently passed). A scenario the run
// skipped, a baseline cell no scenario ran, and a floor with no bench in
// the run are listed as skipped.
package gate

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/reports/report"
)

// Status of a check.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "FAIL"
	Skip Status = "skip"
)

// Check is one comparison the gate made.
type Check struct {
	// Group is the cell (Cell.Name) or "throughput"; Name what
	// was checked, e.g. "journal-batch-kill9 (run 1): lost".
	Group, Name string
	Budget      string
	Got         string
	Status      Status
	// Message explains a failure or skip.
	Message string
}

// Verdict is the gate's result.
type Verdict struct {
	Baseline string
	Checks   []Check
}

// Count returns how many checks have status s.
func (v *Verdict) Count(s Status) int {
	n := 0
	for _, c := range v.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// OK is true when no check failed.
func (v *Verdict) OK() bool { return v.Count(Fail) == 0 }

func num(v float64) string { return fmt.Sprintf("%.6g", v) }

// Evaluate compares in with the baseline.
func Evaluate(b *Baseline, in *report.Input) *Verdict {
	v := &Verdict{Baseline: b.File}
	ran := map[*Cell]bool{}
	for _, s := range in.Scenarios {
		r := s.Result
		at := s.Cell()
		name := fmt.Sprintf("%s (run %s)", r.Scenario, s.Run())
		cell := b.Cell(at.Row, at.Column, r.Strategy)
		if cell == nil {
			v.Checks = append(v.Checks, Check{Group: at.Row + " × " + at.Column, Name: name, Budget: "none", Got: "-", Status: Fail,
				Message: fmt.Sprintf("no baseline cell for row %q, failure %q (strategy %q): add one to %s", at.Row, at.Column, r.Strategy, b.File)})
			continue
		}
		ran[cell] = true
		group := cell.Name()
		if s.Skipped != "" {
			v.Checks = append(v.Checks, Check{Group: group, Name: name, Budget: "-", Got: "-", Status: Skip, Message: "not measured: " + s.Skipped})
			continue
		}
		if r.Acknowledged == 0 {
			v.Checks = append(v.Checks, Check{Group: group, Name: name + ": acknowledged", Budget: "> 0", Got: "0", Status: Fail,
				Message: fmt.Sprintf("%s acknowledged nothing: the run measured nothing, so its loss budget cannot be shown to hold", r.Scenario)})
			continue
		}
		for _, m := range []struct {
			metric string
			budget Budget
			got    float64
		}{
			{"lost", cell.Lost, float64(r.Lost)},
			{"duplicated", cell.Duplicated, float64(r.Duplicated)},
			{"unavailable_s", cell.UnavailableS, r.UnavailableS},
			{"dual_active_s", cell.DualActiveS, r.DualActiveS},
		} {
			c := Check{Group: group, Name: name + ": " + m.metric, Budget: m.budget.String(), Got: num(m.got), Status: Pass}
			if !m.budget.Allows(m.got) {
				c.Status = Fail
				c.Message = fmt.Sprintf("%s %s exceeds the budget %s (%s:%d)", m.metric, num(m.got), m.budget, b.File, cell.Line)
				if m.budget.Floor {
					c.Message = fmt.Sprintf("%s %s, expected %s: a loss measured before is no longer seen (%s:%d)", m.metric, num(m.got), m.budget, b.File, cell.Line)
				}
				if m.metric == "lost" && !m.budget.Any && !m.budget.Floor && m.budget.Max == 0 {
					c.Message = fmt.Sprintf("%s lost %d acknowledged messages; strategy %s promises none (%s:%d)", r.Scenario, r.Lost, r.Strategy, b.File, cell.Line)
				}
			}
			v.Checks = append(v.Checks, c)
		}
	}
	for i := range b.Cells {
		if c := &b.Cells[i]; !ran[c] {
			v.Checks = append(v.Checks, Check{Group: c.Name(), Name: "not run", Budget: "-", Got: "-", Status: Skip,
				Message: fmt.Sprintf("no scenario of this cell in the run (%s:%d)", b.File, c.Line)})
		}
	}
	v.Checks = append(v.Checks, floors(b, in.Benches)...)
	return v
}

// floors checks the throughput floors against every bench of the run.
func floors(b *Baseline, benches []*report.Bench) []Check {
	var out []Check
	for _, f := range b.Throughput {
		name := f.Strategy
		if f.Producers > 0 {
			name += fmt.Sprintf(", %d producers", f.Producers)
		}
		budget := fmt.Sprintf(">= %g × %s", f.MinRatio, b.Reference)
		if len(benches) == 0 {
			out = append(out, Check{Group: "throughput", Name: name, Budget: budget, Got: "-", Status: Skip,
				Message: "no bench.json in the run: throughput not gated"})
			continue
		}
		for _, bn := range benches {
			found := false
			for _, c := range bn.Report.Cells {
				if c.Target != f.Strategy || (f.Producers > 0 && c.Producers != f.Producers) {
					continue
				}
				found = true
				cname := fmt.Sprintf("%s (%s, %d producers, %d B)", f.Strategy, bn.ID, c.Producers, c.Size)
				ref := refCell(bn.Report, b.Reference, c)
				if ref == nil || ref.MsgsPerSec <= 0 {
					out = append(out, Check{Group: "throughput", Name: cname, Budget: budget, Got: "-", Status: Fail,
						Message: fmt.Sprintf("reference %s not measured in %s at %d producers, %d B", b.Reference, bn.ID, c.Producers, c.Size)})
					continue
				}
				ratio := c.MsgsPerSec / ref.MsgsPerSec
				chk := Check{Group: "throughput", Name: cname, Budget: budget,
					Got: fmt.Sprintf("%.3f (%.0f / %.0f msg/s)", ratio, c.MsgsPerSec, ref.MsgsPerSec), Status: Pass}
				if ratio < f.MinRatio {
					chk.Status = Fail
					chk.Message = fmt.Sprintf("throughput ratio %.3f below the floor %g (%s:%d)", ratio, f.MinRatio, b.File, f.Line)
				}
				out = append(out, chk)
			}
			if !found {
				out = append(out, Check{Group: "throughput", Name: name + " (" + bn.ID + ")", Budget: budget, Got: "-", Status: Skip,
					Message: "strategy not measured in this bench"})
			}
		}
	}
	return out
}

func refCell(r *bench.Report, ref string, c bench.Cell) *bench.Cell {
	for i := range r.Cells {
		x := &r.Cells[i]
		if x.Target == ref && x.Producers == c.Producers && x.Size == c.Size {
			return x
		}
	}
	return nil
}

// WriteTable writes what regressed (every failed check) and what was
// skipped, then a one-line summary. verbose lists passing checks too.
func (v *Verdict) WriteTable(w io.Writer, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	checks := append([]Check(nil), v.Checks...)
	order := map[Status]int{Fail: 0, Skip: 1, Pass: 2}
	sort.SliceStable(checks, func(i, j int) bool { return order[checks[i].Status] < order[checks[j].Status] })
	rows := 0
	for _, c := range checks {
		if c.Status == Pass && !verbose {
			continue
		}
		if rows == 0 {
			fmt.Fprintf(tw, "status\tcell\tcheck\tbudget\tgot\twhy\t\n")
		}
		rows++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Status, c.Group, c.Name, c.Budget, c.Got, c.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS"
	if !v.OK() {
		verdict = "FAIL: regressed against " + v.Baseline
	}
	_, err := fmt.Fprintf(w, "gate: %d checks, %d failed, %d skipped, %d passed: %s\n",
		len(v.Checks), v.Count(Fail), v.Count(Skip), v.Count(Pass), verdict)
	return err
}

// groups returns the checks grouped by Group, groups in first-seen order.
func (v *Verdict) groups() (names []string, by map[string][]Check) {
	by = map[string][]Check{}
	for _, c := range v.Checks {
		if _, ok := by[c.Group]; !ok {
			names = append(names, c.Group)
		}
		by[c.Group] = append(by[c.Group], c)
	}
	return names, by
}
