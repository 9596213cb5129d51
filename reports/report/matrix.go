package report

import (
	"sort"
)

// Outcome is a loss-matrix cell's verdict (shared/DESIGN.md): no
// acknowledged message lost, nothing lost but unavailable until repair, or
// acknowledged messages lost.
type Outcome int

// Outcomes, from best to worst; a cell measured several times shows its
// worst.
const (
	NotMeasured Outcome = iota
	NoLoss
	Wait
	Loss
)

// String is the word the report uses.
func (o Outcome) String() string {
	switch o {
	case NoLoss:
		return "no loss"
	case Wait:
		return "wait"
	case Loss:
		return "loss"
	}
	return "not measured"
}

// DefaultWaitAfter is the unavailability from which a lossless run counts
// as "wait" rather than "no loss": a broker restart takes a second or two,
// a repair much longer.
const DefaultWaitAfter = 10.0

// Classify gives one measured scenario's outcome: loss when anything
// acknowledged was lost; wait when nothing was, but a fault never recovered
// or sends were unavailable for waitAfter seconds or more; no loss
// otherwise. A skipped scenario, and one in which nothing was
// acknowledged (it measured nothing: "lost 0 of 0"), is NotMeasured.
func Classify(s *Scenario, waitAfter float64) Outcome {
	r := s.Result
	switch {
	case s.Skipped != "", r.Acknowledged == 0:
		return NotMeasured
	case r.Lost > 0:
		return Loss
	case r.UnavailableS >= waitAfter:
		return Wait
	}
	for _, f := range r.Faults {
		if f.RecoverS == nil {
			return Wait
		}
	}
	return NoLoss
}

// Cell is one (strategy, failure) of the loss matrix over every run of it.
type Cell struct {
	Strategy, Failure string
	Outcome           Outcome
	// Measured are the runs that counted; Skipped those that could not be
	// measured.
	Measured, Skipped []*Scenario
	// Lost, Duplicated and UnavailableS are the worst over Measured.
	Lost, Duplicated int
	UnavailableS     float64
}

// Matrix is the loss matrix: strategies (rows) × failures (columns).
type Matrix struct {
	Strategies, Failures []string
	cells                map[[2]string]*Cell
}

// Cell returns the cell of (strategy, failure), nil if no scenario has it.
func (m *Matrix) Cell(strategy, failure string) *Cell {
	return m.cells[[2]string{strategy, failure}]
}

// NewMatrix groups scenarios by (strategy, failure). A scenario without a
// strategy or failure is filed under "unnamed".
func NewMatrix(scs []*Scenario, waitAfter float64) *Matrix {
	m := &Matrix{cells: map[[2]string]*Cell{}}
	ss, fs := map[string]bool{}, map[string]bool{}
	for _, s := range scs {
		st, fl := orUnnamed(s.Result.Strategy), orUnnamed(s.Result.Failure)
		k := [2]string{st, fl}
		c := m.cells[k]
		if c == nil {
			c = &Cell{Strategy: st, Failure: fl}
			m.cells[k] = c
			ss[st], fs[fl] = true, true
		}
		o := Classify(s, waitAfter)
		if o == NotMeasured {
			c.Skipped = append(c.Skipped, s)
			continue
		}
		c.Measured = append(c.Measured, s)
		c.Outcome = max(c.Outcome, o)
		c.Lost = max(c.Lost, s.Result.Lost)
		c.Duplicated = max(c.Duplicated, s.Result.Duplicated)
		c.UnavailableS = max(c.UnavailableS, s.Result.UnavailableS)
	}
	m.Strategies, m.Failures = sorted(ss), sorted(fs)
	return m
}

func orUnnamed(s string) string {
	if s == "" {
		return "unnamed"
	}
	return s
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
