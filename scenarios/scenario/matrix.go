package scenario

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Matrix places a scenario in the DR matrix: its row (a strategy of
// MatrixRows), its column (a failure of Failures; the report shows
// MatrixColumns first, then any other failure a scenario names) and,
// optionally, the `lossbench bench` target that measures the row's
// throughput. Written in a file as
//
//	matrix: {strategy: replicated-sync, failure: site-lost, bench: replicated-fsynced}
//
// Every key is optional: a missing strategy is DefaultRow of the
// scenario's own `strategy`, a missing failure is its `failure`, a missing
// bench is the scenario's `strategy` (used when the bench has a target of
// that name; else the row's MatrixRow.Bench).
type Matrix struct {
	Strategy string `json:"strategy,omitempty"`
	Failure  string `json:"failure,omitempty"`
	Bench    string `json:"bench,omitempty"`
	Pos      Pos    `json:"pos"`
}

// MatrixRow is one strategy of the DR matrix.
type MatrixRow struct {
	// Name is what `matrix: {strategy: …}` names.
	Name string
	// Title is the row's label in reports.
	Title string
	// NotApplicable are the columns where the strategy has nothing to
	// lose (no broker disk, no database): the report says "n/a" there.
	NotApplicable []string
	// Hypotheses are what the strategy claims per column (the README's
	// DR matrix of hypotheses): "0", "loss", "wait", "?" …
	Hypotheses map[string]string
	// Bench is the `lossbench bench` target measuring the row's
	// throughput when none of its scenarios names one the bench has.
	Bench string
}

// MatrixColumn is one failure of the DR matrix.
type MatrixColumn struct {
	Name, Title string
}

// MatrixColumns are the DR matrix's columns in the report's order. Their
// names are failures (Failures); a scenario may name another failure
// (broker-pause, disk-stall …), which the report shows after these.
var MatrixColumns = []MatrixColumn{
	{"broker-crash", "broker crash"},
	{"power-cut", "power cut"},
	{"disk-lost", "disk lost"},
	{"disk-error", "disk error"},
	{"machine-lost", "machine lost"},
	{"db-lost", "database lost"},
	{"site-lost", "site lost"},
	{"partition", "partition"},
}

var (
	noDB   = []string{"db-lost"}
	noDisk = []string{"disk-lost", "disk-error"}
)

// hyp builds a Hypotheses map over broker-crash, machine-lost, disk-lost,
// db-lost, site-lost and partition, the columns of the hypotheses table.
func hyp(crash, machine, disk, db, site, part string) map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"broker-crash": crash, "machine-lost": machine, "disk-lost": disk,
		"db-lost": db, "site-lost": site, "partition": part} {
		if v != "-" {
			m[k] = v
		}
	}
	return m
}

// MatrixRows are the DR matrix's rows in the report's order.
var MatrixRows = []MatrixRow{
	{Name: "memory", Bench: "memory", Title: "memory", NotApplicable: []string{"disk-lost", "disk-error", "db-lost"},
		Hypotheses: hyp("loss", "loss", "-", "-", "loss", "?")},
	{Name: "journal-never", Bench: "journal-never", Title: "journal, fsync never", NotApplicable: noDB,
		Hypotheses: withPowerCut(hyp("0", "loss", "loss", "-", "loss", "?"), "loss")},
	{Name: "journal-batch", Bench: "journal-batch", Title: "journal, fsync batch", NotApplicable: noDB,
		Hypotheses: withPowerCut(hyp("0", "loss", "loss", "-", "loss", "?"), "0")},
	{Name: "journal-always", Bench: "journal-always", Title: "journal, fsync always", NotApplicable: noDB,
		Hypotheses: withPowerCut(hyp("0", "loss", "loss", "-", "loss", "?"), "0")},
	{Name: "journal-mirrored", Bench: "journal-mirror2", Title: "mirrored journal", NotApplicable: noDB,
		Hypotheses: hyp("0", "loss", "0", "-", "loss", "?")},
	{Name: "shared-storage", Bench: "shared-store", Title: "shared storage", NotApplicable: noDB,
		Hypotheses: hyp("0", "0", "loss/wait", "-", "loss", "split brain?")},
	{Name: "replicated-sync", Bench: "replicated-fsynced", Title: "replicated, sync", NotApplicable: noDB,
		Hypotheses: hyp("0", "0", "0", "-", "0", "split brain?")},
	{Name: "replicated-async", Bench: "replicated-async", Title: "replicated, async", NotApplicable: noDB,
		Hypotheses: hyp("0", "0", "0", "-", "loss", "split brain?")},
	{Name: "jdbc", Bench: "jdbc-postgres", Title: "jdbc, one database", NotApplicable: noDisk,
		Hypotheses: hyp("0", "0", "-", "loss/wait", "loss", "wait")},
	{Name: "jdbc-cluster-sync", Bench: "jdbc-postgres-sync-standby", Title: "jdbc, sync cluster", NotApplicable: noDisk,
		Hypotheses: hyp("0", "0", "-", "0", "0", "wait")},
	{Name: "jdbc-cluster-async", Bench: "jdbc-postgres-async-standby", Title: "jdbc, async cluster", NotApplicable: noDisk,
		Hypotheses: hyp("0", "0", "-", "loss", "loss", "wait")},
	{Name: "journaled-jdbc", Bench: "journaled-jdbc-postgres", Title: "journaled jdbc",
		Hypotheses: hyp("0", "loss", "loss", "0", "loss", "?")},
	{Name: "c-jdbc", Bench: "cjdbc-2postgres-all", Title: "C-JDBC", NotApplicable: noDisk,
		Hypotheses: hyp("0", "0", "-", "0", "0", "?")},
}

func withPowerCut(m map[string]string, v string) map[string]string {
	m["power-cut"] = v
	return m
}

// MatrixRowNames lists the rows' names.
func MatrixRowNames() []string {
	out := make([]string, len(MatrixRows))
	for i, r := range MatrixRows {
		out[i] = r.Name
	}
	return out
}

// RowBench is the bench target of the row named row (MatrixRow.Bench),
// "" for a row the catalogue does not have.
func RowBench(row string) string {
	r, _ := LookupRow(row)
	return r.Bench
}

// LookupRow returns the row named name.
func LookupRow(name string) (MatrixRow, bool) {
	for _, r := range MatrixRows {
		if r.Name == name {
			return r, true
		}
	}
	return MatrixRow{}, false
}

// Applies reports whether the row's strategy can lose anything to the
// failure (false: the report says "n/a").
func (r MatrixRow) Applies(failure string) bool { return !contains(r.NotApplicable, failure) }

// DefaultRow is the row of a scenario's `strategy` when it has no
// `matrix: {strategy: …}`: a row's own name, or a name this table knows
// (the strategies of the files in scenarios/ when the row was added).
// "" when it knows none: give the scenario a matrix key.
func DefaultRow(strategy string) string {
	if _, ok := LookupRow(strategy); ok {
		return strategy
	}
	s := strategy
	switch {
	case strings.HasPrefix(s, "journaled-jdbc"):
		return "journaled-jdbc"
	case strings.HasPrefix(s, "cjdbc"), strings.HasPrefix(s, "c-jdbc"):
		return "c-jdbc"
	case strings.HasPrefix(s, "journal-mirror"):
		return "journal-mirrored"
	case strings.HasPrefix(s, "shared-store"):
		return "shared-storage"
	case strings.HasPrefix(s, "replicated") && strings.Contains(s, "async"):
		return "replicated-async"
	case strings.HasPrefix(s, "replicated"):
		return "replicated-sync"
	case strings.HasPrefix(s, "jdbc") && strings.Contains(s, "async"):
		return "jdbc-cluster-async"
	case strings.HasPrefix(s, "jdbc") && (strings.Contains(s, "sync") || strings.Contains(s, "cluster")):
		return "jdbc-cluster-sync"
	case strings.HasPrefix(s, "jdbc"):
		return "jdbc"
	}
	return ""
}

// Cell is a scenario's place in the DR matrix.
type Cell struct {
	// Row is a MatrixRows name, "" when the scenario names no row and
	// DefaultRow knows none of its strategy.
	Row string `json:"row"`
	// Column is a failure (Failures).
	Column string `json:"column"`
	// Bench is the bench target measuring the row's throughput.
	Bench string `json:"bench"`
}

// Cell returns the scenario's place in the DR matrix (see Matrix).
func (s *Scenario) Cell() Cell {
	c := Cell{Row: DefaultRow(s.Strategy), Column: s.Failure, Bench: s.Strategy}
	if m := s.Matrix; m != nil {
		if m.Strategy != "" {
			c.Row = m.Strategy
		}
		if m.Failure != "" {
			c.Column = m.Failure
		}
		if m.Bench != "" {
			c.Bench = m.Bench
		}
	}
	return c
}

// matrix decodes the `matrix` key.
func (d *decoder) matrix(n *yaml.Node) *Matrix {
	m := &Matrix{Pos: pos(n)}
	f := d.mapping(n, "matrix", "strategy", "failure", "bench")
	if f == nil {
		return m
	}
	if v := f.get("strategy"); v != nil {
		m.Strategy = d.str(v, "matrix strategy")
		if m.Strategy != "" {
			if _, ok := LookupRow(m.Strategy); !ok {
				d.errorf(pos(v), "matrix strategy: unknown %q; expected one of: %s", m.Strategy, strings.Join(MatrixRowNames(), ", "))
			}
		}
	}
	if v := f.get("failure"); v != nil {
		m.Failure = d.str(v, "matrix failure")
		if m.Failure != "" && !contains(Failures, m.Failure) {
			d.errorf(pos(v), "matrix failure: unknown %q; expected one of: %s", m.Failure, strings.Join(Failures, ", "))
		}
	}
	if v := f.get("bench"); v != nil {
		m.Bench = d.name(v, "matrix bench")
	}
	return m
}

// ColumnTitle is a column's label: its MatrixColumns title, or the
// failure's own name.
func ColumnTitle(failure string) string {
	for _, c := range MatrixColumns {
		if c.Name == failure {
			return c.Title
		}
	}
	return failure
}

// RowTitle is a row's label: its MatrixRows title, or the name itself.
func RowTitle(row string) string {
	if r, ok := LookupRow(row); ok {
		return r.Title
	}
	if row == "" {
		return "(no row)"
	}
	return row
}
