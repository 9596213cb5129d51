package report

import (
	"fmt"
	"os"
	"strings"
)

// mdOutcome is a matrix cell in Markdown: a mark a reader sees at a glance
// (colour does not survive a pull-request comment) and the count.
func mdOutcome(c *Cell) string {
	if c == nil {
		return "–"
	}
	mark := map[Outcome]string{NoLoss: "✅", Wait: "⏳", Loss: "❌", NotMeasured: "⚪"}[c.Outcome]
	return mark + " " + strings.ReplaceAll(cellText(c), "\n", ", ")
}

func writeMarkdown(rep *Report) error {
	in, m := rep.in, rep.Matrix
	var b strings.Builder
	fmt.Fprintf(&b, "## lossbench report\n\n")
	if len(in.Scenarios) > 0 {
		fmt.Fprintf(&b, "%s\n\n", meta(in.Scenarios))
		fmt.Fprintf(&b, "### Loss matrix\n\n✅ no loss · ⏳ wait (nothing lost, unavailable until repair) · ❌ acknowledged messages lost · ⚪ not measured\n\n")
		fmt.Fprintf(&b, "| strategy \\ failure | %s |\n|---|%s\n", strings.Join(m.Failures, " | "), strings.Repeat("---|", len(m.Failures)))
		for _, st := range m.Strategies {
			cells := make([]string, len(m.Failures))
			for i, fl := range m.Failures {
				cells[i] = mdOutcome(m.Cell(st, fl))
			}
			fmt.Fprintf(&b, "| %s | %s |\n", st, strings.Join(cells, " | "))
		}
		fmt.Fprintf(&b, "\n### Scenarios\n\n| scenario | strategy | failure | run | seed | verdict | acknowledged | lost | duplicated | msg/s | p99 ms | unavailable s | dual active s | details |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range in.Scenarios {
			r := s.Result
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %d | %d | %d | %.0f | %.1f | %.1f | %.1f | [summary](%s) |\n",
				r.Scenario, r.Strategy, r.Failure, s.Run(), r.Seed, verdict(s), r.Acknowledged, r.Lost, r.Duplicated,
				r.Throughput, r.Latency.P99, r.UnavailableS, r.DualActiveS, summaryLink(rep.Dir, s))
		}
		for _, s := range in.Scenarios {
			if s.Skipped != "" {
				fmt.Fprintf(&b, "\n- %s skipped: %s", s.Result.Scenario, s.Skipped)
			}
		}
		fmt.Fprintln(&b)
	}
	if len(in.Benches) > 0 {
		fmt.Fprintf(&b, "\n### Bench\n\n%s\n\n| target | producers | size B | msg/s | p50 ms | p99 ms | vs reference | of disk limit |\n|---|---|---|---|---|---|---|---|\n", benchMeta(in.Benches, rep.host))
		for _, bn := range in.Benches {
			for _, c := range bn.Report.Cells {
				fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.2f |\n", c.Target, c.Producers, c.Size, c.MsgsPerSec, c.P50, c.P99, c.RatioToReference, c.DiskFraction)
			}
			fmt.Fprintf(&b, "\nDisk (%s): %.0f fdatasync/s of 4 KiB; %.0f 4 KiB writes/s at 16 per fdatasync.\n", bn.ID, bn.Report.Disk.SyncsPerSec, bn.Report.Disk.Grouped16PerSec)
		}
	}
	fmt.Fprintf(&b, "\n### Figures\n\n")
	for _, f := range rep.Figures {
		fmt.Fprintf(&b, "- [%s](%s) ([SVG](%s))\n", f.Title, f.PNG, f.SVG)
	}
	if err := os.WriteFile(rep.Markdown(), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
