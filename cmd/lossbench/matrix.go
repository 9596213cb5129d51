package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/chaos/runner"
	"github.com/lossbench/lossbench/reports/report"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// defaultMatrixFiles are the scenarios `lossbench matrix` runs when given
// none: the default suite, the DR matrix's own and the peer brokers'.
var defaultMatrixFiles = []string{"scenarios/suite/*.yaml", "scenarios/matrix/*.yaml", "scenarios/peers/*.yaml"}

func init() {
	register(command{
		name:    "matrix",
		usage:   "[--seeds N] [--out DIR] [--driver auto|docker|local] [--*-image REF] [--no-bench] [FILE…]",
		summary: "the DR matrix in one run: every (strategy, failure) cell with several seeds, and a bench of every strategy",
		help: `Runs every scenario (default: ` + strings.Join(defaultMatrixFiles, " ") + `) with
--seeds seeds each, and a bench of every strategy the scenarios name, then
prints the DR matrix and writes the report. Each scenario is placed in the
matrix by its matrix: {strategy, failure} key (scenarios/README.md): rows
are strategies, columns failures. Seed k of a scenario is its own seed + k
(k from 0), so each run replays with lossbench run --seed S FILE.

Per cell, the worst run: lost (count and fraction of acknowledged),
duplicated, unavailable seconds (RTO), observed RPO, dual-active seconds,
and whether a run missed its scenario's expectations (the hypothesis). Per
strategy: throughput and p99 for 1 and 16 producers as ratios to
journal-batch and to the disk's fsync limit, from the bench of this run.

Progress goes to standard error: the cell, the seed, the phase and the
time left. A run that errors (a broker that does not start) is reported
in its cell and the matrix goes on; the bench failing does too.

--driver, --broker-bin, --refbroker-image, --postgres-image,
--mariadb-image, --rabbitmq-image, --activemq-image and --send-timeout are
lossbench run's (lossbench run --help): the scenarios run as there.

Writes DIR/<run-id>/: bench/bench.json, seed-<S>/<scenario>/ per run,
errors.json, matrix.txt and report.html. Exit 0 when every run met its
expectations, 1 when a cell differs from its hypothesis, 2 when a run or
the bench errored or the input is bad.`,
		run: runMatrix,
	})
}

// matrixRun is one scenario at one seed.
type matrixRun struct {
	sc   *scenario.Scenario
	seed int64
	est  time.Duration
}

func runMatrix(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	seeds := fs.Int("seeds", 3, "seeds per scenario: its own seed, +1, +2, …")
	out := fs.String("out", "results", "results folder; the run writes `DIR`/<run-id>/")
	rf := addRunFlags(fs)
	runID := fs.String("run-id", "", "name of this run's folder inside --out (default: matrix-<UTC time>)")
	noBench := fs.Bool("no-bench", false, "run the cells only, no bench")
	benchTargets := fs.String("bench-targets", "", "bench targets (default: journal-batch and, per scenario, the first target of its matrix bench, its strategy, its row's target)")
	benchDur := fs.Duration("bench-duration", 3*time.Second, "measured window per bench cell")
	benchWarmup := fs.Duration("bench-warmup", time.Second, "unmeasured warm-up per bench cell")
	files, code, ok := cmd.parse(fs, args)
	if !ok {
		return code
	}
	if *seeds < 1 || *seeds > 100 {
		fmt.Fprintf(st.err, "lossbench matrix: --seeds %d: expected 1 to 100\n", *seeds)
		return exitBad
	}
	if len(files) == 0 {
		for _, g := range defaultMatrixFiles {
			m, _ := filepath.Glob(g)
			files = append(files, m...)
		}
		if len(files) == 0 {
			fmt.Fprintf(st.err, "lossbench matrix: no scenario files given and none in %s (run it from the repository, or name files)\n", strings.Join(defaultMatrixFiles, ", "))
			return exitBad
		}
	}
	if *runID == "" {
		*runID = "matrix-" + runner.NewRunID(time.Now())
	}
	if !scenario.ValidName(*runID) {
		fmt.Fprintf(st.err, "lossbench matrix: --run-id %q: expected %s\n", *runID, scenario.NameRule)
		return exitBad
	}
	scs, ok := loadScenarios(st, files)
	if !ok {
		return exitBad
	}
	for _, s := range scs {
		if c := s.Cell(); c.Row == "" {
			fmt.Fprintf(st.err, "lossbench matrix: %s: strategy %q is in no row of the DR matrix: a row of its own (a peer broker's); to place it, add matrix: {strategy: ROW} (one of %s)\n",
				s.File, s.Strategy, strings.Join(scenario.MatrixRowNames(), ", "))
		}
	}
	opt, ok := rf.options(ctx, st, "lossbench matrix")
	if !ok {
		return exitBad
	}
	root := filepath.Join(*out, *runID)
	if err := os.MkdirAll(root, 0o755); err != nil {
		fmt.Fprintf(st.err, "lossbench matrix: %v\n", err)
		return exitBad
	}
	prog := runner.NewProgress(st.err, isTerminal(st.err))
	opt.Out, opt.Progress, opt.SeedSet = root, prog, true
	if runner.NeedsRefBroker(scs) || !*noBench {
		bin, err := runner.FindBroker(ctx, *rf.brokerBin, root)
		if err != nil {
			fmt.Fprintf(st.err, "lossbench matrix: %v\n", err)
			return exitBad
		}
		opt.BrokerBin = bin
	}
	start := time.Now()
	code = exitOK
	if !*noBench {
		if err := matrixBench(ctx, st, scs, *benchTargets, opt.BrokerBin, filepath.Join(root, "bench"), *benchDur, *benchWarmup); err != nil {
			fmt.Fprintf(st.err, "lossbench matrix: bench: %v (the cells go on; the matrix shows no throughput)\n", err)
			code = exitBad
		}
	}

	var runs []matrixRun
	var total time.Duration
	for _, s := range scs {
		wl := s.Workload
		est := wl.Duration.D() + wl.Recovery.Wait.D() + wl.Recovery.Drain.D()/2 + 5*time.Second
		for k := 0; k < *seeds; k++ {
			runs = append(runs, matrixRun{sc: s, seed: s.Seed + int64(k), est: est})
			total += est
		}
	}
	errs := []report.RunError{}
	var doneEst time.Duration
	cellsStart := time.Now()
	for i, r := range runs {
		if ctx.Err() != nil {
			break
		}
		left := total - doneEst
		if doneEst > 0 { // scale the estimate by how the runs so far compared with theirs
			left = time.Duration(float64(left) * float64(time.Since(cellsStart)) / float64(doneEst))
		}
		c := r.sc.Cell()
		where := fmt.Sprintf("run %d/%d %s × %s seed %d (%d/%d), ~%s left", i+1, len(runs), c.Row, c.Column,
			r.seed, int(r.seed-r.sc.Seed)+1, *seeds, left.Round(time.Second))
		prog.Logf("lossbench matrix: %s: %s", where, r.sc.Name)
		prog.SetContext(where)
		o := opt
		o.Seed, o.RunID = r.seed, fmt.Sprintf("seed-%d", r.seed)
		_, err := runner.Run(ctx, r.sc, o)
		doneEst += r.est
		if err != nil && ctx.Err() == nil {
			prog.Logf("lossbench matrix: %s seed %d: %v (the matrix goes on)", r.sc.Name, r.seed, err)
			errs = append(errs, report.RunError{Scenario: r.sc.Name, File: r.sc.File, Seed: r.seed, Row: c.Row, Column: c.Column, Error: err.Error()})
		}
	}
	prog.SetContext("")
	if err := writeJSON(filepath.Join(root, report.ErrorsFile), errs); err != nil {
		fmt.Fprintf(st.err, "lossbench matrix: %v\n", err)
		return exitBad
	}
	if ctx.Err() != nil {
		fmt.Fprintf(st.err, "lossbench matrix: interrupted; everything started was stopped\n")
		return exitBad
	}
	in, err := report.Load(root)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench matrix: %v\n", err)
		return exitBad
	}
	m := report.NewDRMatrix(in, report.DefaultWaitAfter)
	var sb strings.Builder
	fmt.Fprintf(&sb, "DR matrix: %d scenarios × %d seeds, %s (lost count and fraction of acknowledged, worst run; - no scenario; n/a; ! a run missed its expectations; DUAL two masters)\n",
		len(scs), *seeds, time.Since(start).Round(time.Second))
	if err := report.WriteShort(&sb, m); err != nil {
		fmt.Fprintf(st.err, "lossbench matrix: %v\n", err)
		return exitBad
	}
	fmt.Fprint(st.out, sb.String())
	if err := os.WriteFile(filepath.Join(root, "matrix.txt"), []byte(sb.String()), 0o644); err != nil {
		fmt.Fprintf(st.err, "lossbench matrix: %v\n", err)
		return exitBad
	}
	fmt.Fprintf(st.out, "results: %s\n", root)
	if _, err := writeReportOf(st.out, root, report.DefaultWaitAfter, in); err != nil {
		fmt.Fprintf(st.err, "lossbench matrix: report: %v\n", err)
	}
	if len(errs) > 0 {
		return exitBad
	}
	if code == exitOK {
		for _, r := range m.Rows {
			for _, c := range m.Columns {
				if m.Cell(r, c).Differs() {
					code = exitFailed
				}
			}
		}
		for _, s := range in.Scenarios {
			if s.Skipped == "" && !s.Result.OK {
				code = exitFailed
			}
		}
	}
	return code
}

// matrixBench measures every strategy of scs the bench knows, beside
// journal-batch, into dir.
func matrixBench(ctx context.Context, st *stdio, scs []*scenario.Scenario, list, brokerBin, dir string, dur, warmup time.Duration) error {
	if list == "" {
		known := map[string]bool{}
		for _, t := range allTargets() {
			known[t.Name] = true
		}
		// Per scenario, the first target the bench has of: its matrix
		// bench, its strategy, its row's catalogue target, its row.
		names := map[string]bool{"journal-batch": true}
		for _, s := range scs {
			c := s.Cell()
			for _, n := range []string{c.Bench, s.Strategy, scenario.RowBench(c.Row), c.Row} {
				if known[n] {
					names[n] = true
					break
				}
			}
		}
		var l []string
		for n := range names {
			l = append(l, n)
		}
		sort.Strings(l)
		list = strings.Join(l, ",")
	}
	tgs, err := pickTargets(list)
	if err != nil {
		return err
	}
	var avail []bench.Target
	for _, t := range tgs {
		if err := t.Available(); err != nil {
			fmt.Fprintf(st.err, "lossbench matrix: bench target %s left out: %v\n", t.Name, err)
			continue
		}
		avail = append(avail, t)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, _ := filepath.Abs(dir)
	fmt.Fprintf(st.err, "lossbench matrix: bench of %s, 1 and 16 producers, %s each\n", targetNames(avail), dur)
	bm := &bench.Matrix{
		BrokerBin: brokerBin, Targets: avail, Producers: []int{1, 16}, Sizes: []int{1024},
		Warmup: warmup, Duration: dur, Repeat: 1, Reference: "journal-batch", WorkDir: abs,
		Logf: func(f string, a ...any) { fmt.Fprintf(st.err, "  bench: "+f+"\n", a...) },
	}
	rep, err := bm.Run(ctx)
	if rep != nil {
		var discard strings.Builder
		if werr := writeBench(dir, rep, &discard); werr != nil {
			return werr
		}
	}
	return err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
