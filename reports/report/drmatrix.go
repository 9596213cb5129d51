package report

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// ErrorsFile is where `lossbench matrix` lists the runs that errored, in
// its run folder; Load reads it.
const ErrorsFile = "errors.json"

// RunError is one (scenario, seed) run that could not happen: the cell
// says so and the run went on.
type RunError struct {
	Scenario string `json:"scenario"`
	File     string `json:"file"`
	Seed     int64  `json:"seed"`
	Row      string `json:"row"`
	Column   string `json:"column"`
	Error    string `json:"error"`
}

// ReadErrors reads an ErrorsFile.
func ReadErrors(path string) ([]RunError, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []RunError
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// States of a DR matrix cell.
const (
	StateMeasured   = "measured"
	StateNA         = "n/a"
	StateNoScenario = "no scenario"
	// StateNotMeasured: every run of its scenarios was skipped or
	// acknowledged nothing.
	StateNotMeasured = "not measured"
	// StateError: every run of its scenarios errored.
	StateError = "error"
)

// DRCell is one (strategy row, failure column) of the DR matrix over every
// scenario and seed in it. Figures are the worst over its measured runs.
type DRCell struct {
	Row, Column string
	State       string
	// Hypothesis is what the strategy claims here (scenario.MatrixRow),
	// "" when the hypotheses table says nothing.
	Hypothesis string
	// Runs are the measured runs, Skipped those skipped or empty, Errors
	// the runs that errored.
	Runs, Skipped []*Scenario
	Errors        []RunError
	Outcome       Outcome
	// Worst is the run with the largest lost fraction (then count).
	Worst *Scenario
	// Lost and Acked are the worst run's; LostFrac is Lost/Acked.
	Lost, Acked int
	LostFrac    float64
	// The worst of each over the runs.
	Duplicated               int
	UnavailableS, DualActive float64
	RPOS                     *float64
	// Missed lists the expectations runs did not meet ("scenario seed N:
	// lost 0, got 12"): the measurement differs from the hypothesis.
	Missed []string
}

// Differs is true when a run of the cell missed its scenario's
// expectations.
func (c *DRCell) Differs() bool { return len(c.Missed) > 0 }

// RowBench is a row's throughput from the bench of the same run.
type RowBench struct {
	Target string
	// ByProducers are the target's cells by producer count (1, 16, …).
	ByProducers map[int]*bench.Cell
	Reference   string
}

// DRMatrix is the DR matrix: the strategies of scenario.MatrixRows (rows)
// against the failures of scenario.MatrixColumns, then any other failure
// a scenario names (columns).
type DRMatrix struct {
	Rows, Columns []string
	cells         map[[2]string]*DRCell
	// Extra are rows that are no strategy of scenario.MatrixRows: the
	// strategy of a scenario in no row (a peer broker's), after the
	// catalogue's rows.
	Extra []string
	// Unplaced are runs that name no strategy at all.
	Unplaced []*Scenario
	// Bench is the run's bench (the last one loaded), nil without one.
	Bench *Bench
	// Throughput is per row, from Bench.
	Throughput map[string]*RowBench
}

// Cell returns the cell of (row, column); never nil for the matrix's rows
// and columns.
func (m *DRMatrix) Cell(row, column string) *DRCell { return m.cells[[2]string{row, column}] }

// NewDRMatrix builds the DR matrix from the runs and errors of in.
func NewDRMatrix(in *Input, waitAfter float64) *DRMatrix {
	m := &DRMatrix{cells: map[[2]string]*DRCell{}, Throughput: map[string]*RowBench{}}
	m.Rows = scenario.MatrixRowNames()
	for _, c := range scenario.MatrixColumns {
		m.Columns = append(m.Columns, c.Name)
	}
	addColumn := func(col string) {
		if col != "" && !contains(m.Columns, col) {
			m.Columns = append(m.Columns, col)
		}
	}
	benchOf := map[string][]string{} // row -> bench target candidates
	for _, s := range in.Scenarios {
		c := cellOf(s)
		if c.Row == "" {
			m.Unplaced = append(m.Unplaced, s)
			continue
		}
		if !contains(m.Rows, c.Row) {
			m.Rows = append(m.Rows, c.Row)
			m.Extra = append(m.Extra, c.Row)
		}
		addColumn(c.Column)
		if !contains(benchOf[c.Row], c.Bench) {
			benchOf[c.Row] = append(benchOf[c.Row], c.Bench)
		}
	}
	for _, e := range in.Errors {
		addColumn(e.Column)
	}
	for _, r := range m.Rows {
		row, _ := scenario.LookupRow(r)
		for _, col := range m.Columns {
			st := StateNoScenario
			if !row.Applies(col) {
				st = StateNA
			}
			m.cells[[2]string{r, col}] = &DRCell{Row: r, Column: col, State: st, Hypothesis: row.Hypotheses[col]}
		}
	}
	for _, s := range in.Scenarios {
		c := cellOf(s)
		cell := m.cells[[2]string{c.Row, c.Column}]
		if cell == nil {
			continue
		}
		if Classify(s, waitAfter) == NotMeasured {
			cell.Skipped = append(cell.Skipped, s)
			continue
		}
		cell.add(s, waitAfter)
	}
	for _, e := range in.Errors {
		if cell := m.cells[[2]string{e.Row, e.Column}]; cell != nil {
			cell.Errors = append(cell.Errors, e)
		}
	}
	for _, cell := range m.cells {
		switch {
		case len(cell.Runs) > 0:
			cell.State = StateMeasured
		case len(cell.Skipped) > 0:
			cell.State = StateNotMeasured
		case len(cell.Errors) > 0:
			cell.State = StateError
		}
		for _, s := range append(append([]*Scenario{}, cell.Runs...), cell.Skipped...) {
			for _, e := range s.Result.Failed() {
				cell.Missed = append(cell.Missed, fmt.Sprintf("%s seed %d: %s %s, got %g", s.Result.Scenario, s.Result.Seed, e.Metric, e.Condition, e.Value))
			}
		}
	}
	if len(in.Benches) > 0 {
		m.Bench = in.Benches[len(in.Benches)-1]
		for _, r := range m.Rows {
			// the scenarios' targets, then the row's own, then a target
			// named like the row (rows without scenarios too)
			for _, t := range append(benchOf[r], scenario.RowBench(r), r) {
				if rb := rowBench(m.Bench.Report, t); t != "" && rb != nil {
					m.Throughput[r] = rb
					break
				}
			}
		}
	}
	return m
}

// Cell is the run's cell of the DR matrix; a scenario in no row of the
// catalogue gets a row of its own, named by its strategy.
func (s *Scenario) Cell() scenario.Cell { return cellOf(s) }

func cellOf(s *Scenario) scenario.Cell {
	c := s.Result.CellOf()
	if c.Row == "" {
		c.Row = s.Result.Strategy
	}
	return c
}

func (c *DRCell) add(s *Scenario, waitAfter float64) {
	r := s.Result
	c.Runs = append(c.Runs, s)
	c.Outcome = max(c.Outcome, Classify(s, waitAfter))
	frac := 0.0
	if r.Acknowledged > 0 {
		frac = float64(r.Lost) / float64(r.Acknowledged)
	}
	if c.Worst == nil || frac > c.LostFrac || (frac == c.LostFrac && r.Lost > c.Lost) {
		c.Worst, c.Lost, c.Acked, c.LostFrac = s, r.Lost, r.Acknowledged, frac
	}
	c.Duplicated = max(c.Duplicated, r.Duplicated)
	c.UnavailableS = max(c.UnavailableS, r.UnavailableS)
	c.DualActive = max(c.DualActive, r.DualActiveS)
	if p := r.LossAttribution.RPOS; p != nil && (c.RPOS == nil || *p > *c.RPOS) {
		v := *p
		c.RPOS = &v
	}
}

// rowBench collects target's cells of rep (the first message size).
func rowBench(rep *bench.Report, target string) *RowBench {
	var rb *RowBench
	for i := range rep.Cells {
		c := &rep.Cells[i]
		if c.Target != target {
			continue
		}
		if rb == nil {
			rb = &RowBench{Target: target, ByProducers: map[int]*bench.Cell{}, Reference: rep.Reference}
		}
		if _, dup := rb.ByProducers[c.Producers]; !dup {
			rb.ByProducers[c.Producers] = c
		}
	}
	return rb
}

// WorstLoss is the row's largest lost fraction over its measured cells,
// and whether any cell was measured.
func (m *DRMatrix) WorstLoss(row string) (float64, bool) {
	worst, any := 0.0, false
	for _, col := range m.Columns {
		if c := m.Cell(row, col); c != nil && c.State == StateMeasured {
			worst, any = max(worst, c.LostFrac), true
		}
	}
	return worst, any
}

// Text is the cell's figures in a few short lines.
func (c *DRCell) Text() string {
	switch c.State {
	case StateNA:
		return "n/a"
	case StateNoScenario:
		return "no scenario"
	case StateNotMeasured:
		return "not measured (skipped or nothing acknowledged)"
	case StateError:
		return fmt.Sprintf("error (%d run(s))", len(c.Errors))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lost %d of %d (%s)", c.Lost, c.Acked, pct(c.LostFrac))
	fmt.Fprintf(&b, "\ndup %d, RTO %.1f s", c.Duplicated, c.UnavailableS)
	if c.RPOS != nil {
		fmt.Fprintf(&b, "\nRPO %.1f s", *c.RPOS)
	}
	if c.DualActive > 0 {
		fmt.Fprintf(&b, "\ndual active %.1f s", c.DualActive)
	}
	if n := len(c.Runs); n > 1 {
		fmt.Fprintf(&b, "\nworst of %d runs", n)
	}
	if len(c.Errors) > 0 {
		fmt.Fprintf(&b, "\n%d run(s) errored", len(c.Errors))
	}
	return b.String()
}

// Short is the cell in one word or two for a terminal table.
func (c *DRCell) Short() string {
	switch c.State {
	case StateNA:
		return "n/a"
	case StateNoScenario:
		return "-"
	case StateNotMeasured:
		return "skip"
	case StateError:
		return "ERROR"
	}
	s := "0"
	if c.Lost > 0 {
		s = fmt.Sprintf("%d(%s)", c.Lost, pct(c.LostFrac))
	}
	if c.Outcome == Wait {
		s += fmt.Sprintf(" wait%.0fs", c.UnavailableS)
	}
	if c.DualActive > 0 {
		s += " DUAL"
	}
	if c.Differs() {
		s += " !"
	}
	if len(c.Errors) > 0 {
		s += " err"
	}
	return s
}

func pct(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.001:
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", f*100)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
