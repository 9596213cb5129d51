package gate

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/lossbench/lossbench/scenarios/scenario"
	"gopkg.in/yaml.v3"
)

// Budget is how much of a metric a cell may show: a number (the maximum,
// inclusive), "any" (not gated: the strategy promises nothing), or a
// floor, ">N" (more than N): a known loss the checker must keep seeing,
// pinned so that a harness that stopped catching a real broker's loss
// fails the gate.
type Budget struct {
	Any bool
	Max float64
	// Floor, when set, makes the budget "more than Min" instead of a
	// maximum.
	Floor bool
	Min   float64
}

// Allows reports whether v is within the budget.
func (b Budget) Allows(v float64) bool {
	switch {
	case b.Any:
		return true
	case b.Floor:
		return v > b.Min
	}
	return v <= b.Max
}

// String is the budget as the baseline writes it.
func (b Budget) String() string {
	switch {
	case b.Any:
		return "any"
	case b.Floor:
		return "> " + strconv.FormatFloat(b.Min, 'f', -1, 64)
	}
	return "<= " + strconv.FormatFloat(b.Max, 'f', -1, 64)
}

// Cell is the budget of one cell of the DR matrix: its row (a
// scenario.MatrixRows name, or the strategy of a scenario in no row: a
// peer broker's) and its column (the failure). Strategy, when set,
// narrows the cell to the runs of scenarios with that `strategy:` (a
// cell holding strategies with different promises: a replicated pair
// with and without a witness under a partition); a cell without one
// takes every run of its row and column no narrowed cell takes.
type Cell struct {
	Row, Failure string
	Strategy     string
	Lost         Budget
	Duplicated   Budget
	UnavailableS Budget
	// DualActiveS is the seconds in which two nodes may acknowledge at
	// once (two masters); optional, default 0: never.
	DualActiveS Budget
	// Line is where the cell starts in the baseline file.
	Line int
}

// Floor is a strategy's lowest allowed throughput as a ratio to the
// reference strategy measured in the same bench run, per producer count
// (Producers 0: every producer count).
type Floor struct {
	Strategy  string
	Producers int
	MinRatio  float64
	Line      int
}

// Baseline is the checked-in file the gate compares a run with.
type Baseline struct {
	File string
	// Reference names the bench target throughput floors are ratios to.
	Reference  string
	Cells      []Cell
	Throughput []Floor
}

// Cell returns the budget of a run in (row, failure) of a scenario with
// strategy: the cell narrowed to that strategy, else the cell of (row,
// failure) narrowed to none; nil if the baseline has neither.
func (b *Baseline) Cell(row, failure, strategy string) *Cell {
	if c := b.exact(row, failure, strategy); c != nil || strategy == "" {
		return c
	}
	return b.exact(row, failure, "")
}

// exact returns the cell of (row, failure) narrowed to strategy ("": to
// none).
func (b *Baseline) exact(row, failure, strategy string) *Cell {
	for i := range b.Cells {
		if c := &b.Cells[i]; c.Row == row && c.Failure == failure && c.Strategy == strategy {
			return c
		}
	}
	return nil
}

// Name is the cell as the gate's output shows it: "row × failure", with
// "[strategy]" when narrowed.
func (c *Cell) Name() string {
	n := c.Row + " × " + c.Failure
	if c.Strategy != "" {
		n += " [" + c.Strategy + "]"
	}
	return n
}

// Error is a problem in the baseline file at a line.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Col == 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ErrorList is every problem found in a baseline file.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// ErrBaseline marks a baseline that cannot be used (exit 2).
var ErrBaseline = errors.New("gate: bad baseline")

type parser struct {
	file string
	errs ErrorList
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// mapping returns the keys of a mapping node, reporting unknown and
// repeated keys; nil when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping", what)
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.Value
		}
		switch {
		case !ok:
			p.errorf(k, "%s: unknown key %q (expected one of %s)", what, k.Value, strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.errorf(k, "%s: %q given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (p *parser) str(m map[string]*yaml.Node, parent *yaml.Node, key, what string) string {
	n := m[key]
	if n == nil {
		p.errorf(parent, "%s: %q is required", what, key)
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Value == "" {
		p.errorf(n, "%s: %s: expected a name", what, key)
		return ""
	}
	return n.Value
}

func (p *parser) number(n *yaml.Node, what string) (float64, bool) {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		p.errorf(n, "%s: expected a number >= 0, got %q", what, n.Value)
		return 0, false
	}
	return v, true
}

func (p *parser) budget(m map[string]*yaml.Node, parent *yaml.Node, key, what string) Budget {
	n := m[key]
	if n == nil {
		p.errorf(parent, "%s: %q is required (a number, or \"any\" where the strategy promises nothing)", what, key)
		return Budget{}
	}
	if n.Kind == yaml.ScalarNode && n.Value == "any" {
		return Budget{Any: true}
	}
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, ">") {
		f := *n
		f.Value = strings.TrimSpace(strings.TrimPrefix(n.Value, ">"))
		v, _ := p.number(&f, what+": "+key+" (\">N\": more than a number)")
		return Budget{Floor: true, Min: v}
	}
	v, _ := p.number(n, what+": "+key+" (a number, \">N\" or \"any\")")
	return Budget{Max: v}
}

// Parse reads a baseline; name is used in error positions. Every problem
// is reported as an ErrorList wrapping ErrBaseline.
func Parse(name string, data []byte) (*Baseline, error) {
	p := &parser{file: name}
	b := &Baseline{File: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := &Error{File: name, Line: 1, Msg: err.Error()}
		if _, serr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &e.Line); serr != nil {
			// yaml.v3 gives no line for a control character or bytes
			// that are not UTF-8: point at the first one.
			e.Line = 1
			if pos, ok := scenario.JunkPos(data); ok {
				e.Line, e.Col = pos.Line, pos.Col
			}
		}
		p.errs = append(p.errs, e)
		return nil, fmt.Errorf("%w: %w", ErrBaseline, p.errs)
	}
	if len(doc.Content) == 0 {
		p.errs = append(p.errs, &Error{File: name, Line: 1, Col: 1, Msg: "empty baseline"})
		return nil, fmt.Errorf("%w: %w", ErrBaseline, p.errs)
	}
	root := doc.Content[0]
	top := p.mapping(root, "baseline", "reference", "cells", "throughput")
	if top != nil {
		if n := top["reference"]; n != nil {
			b.Reference = p.str(top, root, "reference", "baseline")
		}
		if n := top["cells"]; n == nil {
			p.errorf(root, "baseline: \"cells\" is required")
		} else if n.Kind != yaml.SequenceNode {
			p.errorf(n, "cells: expected a list")
		} else {
			for _, c := range n.Content {
				p.cell(b, c)
			}
		}
		if n := top["throughput"]; n != nil {
			if n.Kind != yaml.SequenceNode {
				p.errorf(n, "throughput: expected a list")
			} else {
				if b.Reference == "" {
					p.errorf(n, "throughput floors need \"reference\": the strategy they are ratios to")
				}
				for _, f := range n.Content {
					p.floor(b, f)
				}
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrBaseline, p.errs)
	}
	return b, nil
}

func (p *parser) cell(b *Baseline, n *yaml.Node) {
	m := p.mapping(n, "cell", "row", "failure", "strategy", "lost", "duplicated", "unavailable_s", "dual_active_s")
	if m == nil {
		return
	}
	c := Cell{Line: n.Line,
		Row: p.str(m, n, "row", "cell"), Failure: p.str(m, n, "failure", "cell"),
		Lost: p.budget(m, n, "lost", "cell"), Duplicated: p.budget(m, n, "duplicated", "cell"),
		UnavailableS: p.budget(m, n, "unavailable_s", "cell")}
	if m["strategy"] != nil {
		c.Strategy = p.str(m, n, "strategy", "cell")
	}
	if m["dual_active_s"] != nil {
		c.DualActiveS = p.budget(m, n, "dual_active_s", "cell")
	}
	if c.Row != "" && c.Failure != "" {
		if prev := b.exact(c.Row, c.Failure, c.Strategy); prev != nil {
			p.errorf(n, "cell %s already given at line %d", c.Name(), prev.Line)
			return
		}
	}
	b.Cells = append(b.Cells, c)
}

func (p *parser) floor(b *Baseline, n *yaml.Node) {
	m := p.mapping(n, "throughput floor", "strategy", "producers", "min_ratio")
	if m == nil {
		return
	}
	f := Floor{Line: n.Line, Strategy: p.str(m, n, "strategy", "throughput floor")}
	if r := m["min_ratio"]; r == nil {
		p.errorf(n, "throughput floor: \"min_ratio\" is required (throughput / the reference's, in the same run)")
	} else {
		f.MinRatio, _ = p.number(r, "throughput floor: min_ratio")
	}
	if pr := m["producers"]; pr != nil {
		v, err := strconv.Atoi(pr.Value)
		if err != nil || v < 1 {
			p.errorf(pr, "throughput floor: producers: expected a whole number >= 1, got %q", pr.Value)
		}
		f.Producers = v
	}
	b.Throughput = append(b.Throughput, f)
}

// Load reads the baseline file at path.
func Load(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBaseline, err)
	}
	return Parse(path, data)
}
