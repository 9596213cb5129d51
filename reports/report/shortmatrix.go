package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// WriteShort prints the DR matrix as a terminal table: per cell the lost
// count and fraction (0 when nothing was lost), "wait" when it was
// unavailable long, DUAL for two masters, "!" where a run missed its
// expectations, "-" no scenario, n/a, skip, ERROR; then per row the
// bench's throughput as a ratio to the reference and to the disk's limit
// for 1 and 16 producers. Rows without any scenario or bench are left out.
func WriteShort(w io.Writer, m *DRMatrix) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "strategy \\ failure")
	for _, c := range m.Columns {
		fmt.Fprintf(tw, "\t%s", c)
	}
	ref := "journal-batch"
	if m.Bench != nil {
		ref = m.Bench.Report.Reference
	}
	fmt.Fprintf(tw, "\tvs %s 1p/16p\tof disk 1p/16p\tp99 ms 1p/16p\t\n", ref)
	for _, r := range m.Rows {
		tp := m.Throughput[r]
		used := tp != nil
		for _, c := range m.Columns {
			if st := m.Cell(r, c).State; st != StateNA && st != StateNoScenario {
				used = true
			}
		}
		if !used {
			continue
		}
		fmt.Fprintf(tw, "%s", scenario.RowTitle(r))
		for _, c := range m.Columns {
			fmt.Fprintf(tw, "\t%s", m.Cell(r, c).Short())
		}
		if tp == nil {
			fmt.Fprintf(tw, "\tnot benched\t\t\t\n")
			continue
		}
		f := benchFigs(tp, "/")
		fmt.Fprintf(tw, "\t%s\t%s\t%s\t\n", f[0], f[1], f[2])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range m.Extra {
		fmt.Fprintf(w, "  %s: not a strategy of the DR matrix (a peer broker?): a row of its own\n", r)
	}
	for _, s := range m.Unplaced {
		fmt.Fprintf(w, "  %s: names no strategy: in no row\n", s.Result.Scenario)
	}
	for _, r := range m.Rows {
		for _, c := range m.Columns {
			cell := m.Cell(r, c)
			for _, x := range cell.Missed {
				fmt.Fprintf(w, "  ! %s × %s: differs from its hypothesis: %s\n", r, c, x)
			}
			for _, e := range cell.Errors {
				msg, _, _ := strings.Cut(e.Error, "\n")
				fmt.Fprintf(w, "  ERROR %s × %s: %s seed %d: %s (replay: lossbench run --seed %d %s)\n", r, c, e.Scenario, e.Seed, msg, e.Seed, e.File)
			}
		}
	}
	return nil
}

// benchFigs are the row's bench figures for 1 and 16 producers, each pair
// joined by sep: the ratio to the reference, the fraction of the disk's
// limit, the p99 in ms.
func benchFigs(tp *RowBench, sep string) [3]string {
	return [3]string{
		benchFig(tp, 1, true) + sep + benchFig(tp, 16, true),
		benchFig(tp, 1, false) + sep + benchFig(tp, 16, false),
		p99(tp, 1) + sep + p99(tp, 16),
	}
}

// benchFig is the ratio to the reference (ratio true) or the fraction of
// the disk's limit of the row's cell with n producers, "?" without one.
func benchFig(tp *RowBench, n int, ratio bool) string {
	c := tp.ByProducers[n]
	if c == nil {
		return "?"
	}
	if ratio {
		return f2(c.RatioToReference)
	}
	return f2(c.DiskFraction)
}

func p99(tp *RowBench, n int) string {
	if c := tp.ByProducers[n]; c != nil {
		return fmt.Sprintf("%.1f", c.P99)
	}
	return "?"
}
