package report

import (
	"fmt"
	"strings"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// htmlDR is the headline: the DR matrix with its figures and throughput.
type htmlDR struct {
	Columns   []string
	Rows      []htmlDRRow
	Reference string
	TradeOff  *Figure
	Missing   string
	Differing int
}

type htmlDRRow struct {
	Title  string
	Cells  []htmlDRCell
	Bench  [3]string // ratio to the reference, of disk, p99: "1p / 16p"
	Target string
}

type htmlDRCell struct {
	Class, Tip string
	Lines      []string
	Differs    bool
	Links      []htmlLink
}

// drHTML lays out rep.DR; anchors maps each run to its section's anchor.
func drHTML(rep *Report, anchors map[*Scenario]string) *htmlDR {
	m := rep.DR
	out := &htmlDR{Reference: "journal-batch", TradeOff: rep.TradeOff, Missing: strings.Join(rep.TradeOffMissing, ", ")}
	if m.Bench != nil {
		out.Reference = m.Bench.Report.Reference
	}
	for _, c := range m.Columns {
		out.Columns = append(out.Columns, scenario.ColumnTitle(c))
	}
	for _, r := range m.Rows {
		row := htmlDRRow{Title: scenario.RowTitle(r), Bench: [3]string{"not benched", "", ""}}
		if tp := m.Throughput[r]; tp != nil {
			row.Target = tp.Target
			row.Bench = benchFigs(tp, " / ")
		}
		for _, col := range m.Columns {
			c := m.Cell(r, col)
			hc := htmlDRCell{Lines: strings.Split(c.Text(), "\n"), Differs: c.Differs()}
			switch c.State {
			case StateMeasured:
				hc.Class = map[Outcome]string{NoLoss: "noloss", Wait: "wait", Loss: "loss"}[c.Outcome]
			case StateNoScenario:
				hc.Class = "none"
			case StateError:
				hc.Class = "error"
			default:
				hc.Class = "na"
			}
			tip := []string{scenario.RowTitle(r) + " × " + scenario.ColumnTitle(col)}
			if c.Hypothesis != "" {
				tip = append(tip, "hypothesis: "+c.Hypothesis)
			}
			tip = append(tip, c.Missed...)
			for _, e := range c.Errors {
				tip = append(tip, fmt.Sprintf("%s seed %d: %s", e.Scenario, e.Seed, e.Error))
			}
			hc.Tip = strings.Join(tip, "\n")
			if c.Differs() {
				out.Differing++
				hc.Lines = append(hc.Lines, "≠ hypothesis")
			}
			if w := c.Worst; w != nil {
				a := anchors[w]
				hc.Links = append(hc.Links, htmlLink{Href: "#" + a + "-timeline", Text: "timeline"})
				if w.Result.Lost > 0 {
					hc.Links = append(hc.Links, htmlLink{Href: "#" + a + "-lost", Text: "lost messages"})
				}
			}
			if c.Differs() && c.Worst == nil && len(c.Skipped) > 0 {
				hc.Links = append(hc.Links, htmlLink{Href: "#" + anchors[c.Skipped[0]], Text: "run"})
			}
			row.Cells = append(row.Cells, hc)
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

func f2(f float64) string { return fmt.Sprintf("%.2f", f) }
