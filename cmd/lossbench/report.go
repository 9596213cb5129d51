package main

import (
	"context"
	"fmt"
	"io"

	"github.com/lossbench/lossbench/reports/report"
)

func init() {
	register(command{
		name:    "report",
		usage:   "[--out DIR] [--wait-after SECONDS] DIR…",
		summary: "draw report.html, report.md and plots from run and bench folders",
		help: `Reads every result.json (a run's scenarios) and bench.json (lossbench
bench) under the folders given and writes, into --out (default: the first
folder): report.html (self-contained, images inlined, opens from disk),
report.md (for a pull-request comment) and plots/*.png and *.svg: the loss
matrix, throughput and latency percentiles per store and per strategy,
a timeline per scenario with its fault windows, and lost messages by
send time.

Exit 0 when the report was written, 2 when the folders hold nothing to
report or a file does not parse.`,
		run: runReport,
	})
}

func runReport(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	out := fs.String("out", "", "folder to write the report to (default: the first DIR)")
	wait := fs.Float64("wait-after", report.DefaultWaitAfter, "unavailability in seconds from which a lossless scenario is shown as \"wait\"")
	dirs, code, ok := cmd.parse(fs, args)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		fmt.Fprintf(st.err, "lossbench report: no folder given\n")
		fs.Usage()
		return exitBad
	}
	if *out == "" {
		*out = dirs[0]
	}
	if _, err := writeReport(st.out, *out, *wait, dirs...); err != nil {
		fmt.Fprintf(st.err, "lossbench report: %v\n", err)
		return exitBad
	}
	return exitOK
}

// writeReport draws the report of dirs into out and says where it is. run
// and bench call it on their own output; its error never changes their
// exit code.
func writeReport(w io.Writer, out string, waitAfter float64, dirs ...string) (*report.Report, error) {
	in, err := report.Load(dirs...)
	if err != nil {
		return nil, err
	}
	return writeReportOf(w, out, waitAfter, in)
}

// writeReportOf is writeReport of results already loaded.
func writeReportOf(w io.Writer, out string, waitAfter float64, in *report.Input) (*report.Report, error) {
	rep, err := report.Write(out, in, report.Options{WaitAfter: waitAfter})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "report: %s (%d figures; %s)\n", rep.HTML(), len(rep.Figures), rep.Markdown())
	return rep, nil
}
