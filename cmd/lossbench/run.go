package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/lossbench/lossbench/chaos/runner"
	"github.com/lossbench/lossbench/reports/report"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

func init() {
	register(command{
		name:    "run",
		usage:   "[--driver auto|docker|local] [--out DIR] [--seed N] [--broker-bin PATH] FILE…",
		summary: "run scenarios and write their results",
		help: `Runs each scenario file: starts its topology through a driver, drives
producers and consumers, plays the fault timeline, recovers, drains, and
checks which acknowledged messages were lost. The local driver runs brokers
as child processes on 127.0.<site>.<node>, every link through an in-process
toxiproxy. The docker driver runs each node as a container of a refbroker
image built here (FROM scratch, tagged by content hash, never pulled), each
site a Docker network, each disk a volume, links through the same proxies.
Its PostgreSQL and MariaDB databases are containers too, of images made
from this machine's Debian packages (lossbench images), or of the images
--postgres-image and --mariadb-image name (postgres:15, mariadb:10.11 where
a registry is reachable; never pulled by lossbench). rabbitmq nodes (a
lone node or a cluster) run from lossbench/rabbitmq, made the same way, or
--rabbitmq-image; a lone activemq node from lossbench/activemq, or
--activemq-image.
--driver auto (the default) uses docker when an engine answers and the image
builds, else local, and prints which and why; a scenario docker cannot run
(a database image that cannot be made, a Galera cluster from a named
image, db-data-lost on a Galera node, a command broker without image:, a
rabbitmq cluster over sites no link joins, several activemq nodes, a
power cut or disk fault without FUSE) runs on local. Power cuts and disk faults
run on docker too: the node's data is served through lazyfs (FUSE, as
root) on the host and bind-mounted into its container.

Each scenario writes DIR/<run-id>/<scenario>/: plan.json (the resolved
scenario), history.jsonl, result.json, summary.md and logs/<node>.log.
A summary table is printed at the end; progress goes to standard error
(a bar on a terminal, plain lines otherwise).

Left-overs of a run that was killed are removed before the run starts:
brokers and tmpfs mounts found through DIR/.lossbench-local, containers,
volumes and networks by their lossbench.* labels.

Exit 0 when every expectation holds (skipped scenarios do not count),
1 when one fails or a scenario acknowledged nothing (verdict EMPTY: it
measured nothing), 2 on bad input or environment (a scenario that does
not parse, a broker that cannot be built or started).`,
		run: runRun,
	})
}

func runRun(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	rf := addRunFlags(fs)
	out := fs.String("out", "results", "results folder; each run writes `DIR`/<run-id>/<scenario>/")
	seed := fs.Int64("seed", 0, "replay with this seed instead of each scenario's own")
	runID := fs.String("run-id", "", "name of this run's folder inside --out: letters, digits, '.', '_', '-' (default: the UTC start time)")
	files, code, ok := cmd.parse(fs, args)
	if !ok {
		return code
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if len(files) == 0 {
		fmt.Fprintf(st.err, "lossbench run: no scenario files given\n")
		fs.Usage()
		return exitBad
	}
	if *runID != "" && !scenario.ValidName(*runID) {
		fmt.Fprintf(st.err, "lossbench run: --run-id %q: expected %s (it names a folder inside --out)\n", *runID, scenario.NameRule)
		return exitBad
	}
	opt, ok := rf.options(ctx, st, "lossbench run")
	if !ok {
		return exitBad
	}
	scs, ok := loadScenarios(st, files)
	if !ok {
		return exitBad
	}
	opt.Out, opt.RunID, opt.Seed, opt.SeedSet = *out, *runID, *seed, seedSet
	opt.Progress = runner.NewProgress(st.err, isTerminal(st.err))
	if opt.RunID == "" {
		opt.RunID = runner.NewRunID(time.Now())
	}
	if runner.NeedsRefBroker(scs) {
		bin, err := runner.FindBroker(ctx, *rf.brokerBin, filepath.Join(*out, opt.RunID))
		if err != nil {
			fmt.Fprintf(st.err, "lossbench run: %v\n", err)
			return exitBad
		}
		opt.BrokerBin = bin
	}
	var outcomes []*runner.Outcome
	code = exitOK
	for _, s := range scs {
		if ctx.Err() != nil {
			break
		}
		o, err := runner.Run(ctx, s, opt)
		if err != nil {
			fmt.Fprintf(st.err, "lossbench run: %s (%s): %v\n", s.Name, s.File, err)
			code = exitBad
			outcomes = append(outcomes, &runner.Outcome{Scenario: s.Name})
			continue
		}
		outcomes = append(outcomes, o)
		if o.Skipped == "" && !o.Result.OK && code == exitOK {
			code = exitFailed
		}
	}
	printTable(st.out, outcomes)
	fmt.Fprintf(st.out, "results: %s\n", filepath.Join(*out, opt.RunID))
	if ctx.Err() == nil {
		// The report is a view of the results: its failure is printed and
		// never changes the exit code.
		rep, err := writeReport(st.out, filepath.Join(*out, opt.RunID), report.DefaultWaitAfter, filepath.Join(*out, opt.RunID))
		if err != nil {
			fmt.Fprintf(st.err, "lossbench run: report: %v\n", err)
		} else if len(outcomes) > 1 {
			fmt.Fprintf(st.out, "\nDR matrix (lost count and fraction of acknowledged; - no scenario; ! missed its expectations):\n")
			if err := report.WriteShort(st.out, rep.DR); err != nil {
				fmt.Fprintf(st.err, "lossbench run: %v\n", err)
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(st.err, "lossbench run: interrupted; everything started was stopped\n")
		return exitBad
	}
	return code
}

func printTable(w io.Writer, outs []*runner.Outcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tverdict\tattempted\tacknowledged\treceived\tlost\tduplicated\tunknown\tmsg/s\tp99 ms\tunavail s\t\n")
	for _, o := range outs {
		if o.Result == nil {
			fmt.Fprintf(tw, "%s\tERROR\t\t\t\t\t\t\t\t\t\t\n", o.Scenario)
			continue
		}
		r := o.Result
		verdict := r.Verdict
		if o.Skipped != "" {
			verdict = "SKIP"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t\n", o.Scenario, verdict,
			r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Duplicated, r.UnknownOutcomes,
			r.Throughput, r.Latency.P99, r.UnavailableS)
	}
	tw.Flush()
	for _, o := range outs {
		if o.Result == nil {
			continue
		}
		if o.Skipped != "" {
			fmt.Fprintf(w, "  %s skipped: %s\n", o.Scenario, o.Skipped)
			continue
		}
		if o.Result.Verdict == result.Empty {
			fmt.Fprintf(w, "  %s: %s: %s\n", o.Scenario, result.Empty, result.EmptyText)
		}
		for _, e := range o.Result.Failed() {
			fmt.Fprintf(w, "  %s: expectation failed: %s %s, got %g\n", o.Scenario, e.Metric, e.Condition, e.Value)
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
