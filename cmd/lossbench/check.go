package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

func init() {
	register(command{
		name:    "check",
		usage:   "[flags] DIR…",
		summary: "re-run the checker on a scenario's output folder",
		help: `Reads DIR/plan.json and DIR/history.jsonl of a scenario's output folder,
runs the checker again, evaluates the scenario's expectations and rewrites
DIR/result.json and DIR/summary.md. The environment recorded by the run
(if DIR/result.json exists) is kept.
Exit 0 when every expectation holds, 1 when one fails, 2 on bad input.`,
		run: runCheck,
	})
}

func runCheck(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fset := cmd.flags(st)
	unavail := fset.Duration("unavailable-after", checker.DefaultUnavailableAfter, "shortest gap without an acknowledged send that counts as unavailable")
	sample := fset.Int("lost-sample", checker.DefaultLostSample, "lost ids kept in result.json (negative: none)")
	dirs, code, ok := cmd.parse(fset, args)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		fmt.Fprintf(st.err, "lossbench check: no folder given\n")
		fset.Usage()
		return exitBad
	}
	opt := checker.Options{UnavailableAfter: *unavail, LostSample: *sample}
	code = exitOK
	for _, dir := range dirs {
		r, err := checkDir(ctx, dir, opt)
		if err != nil {
			fmt.Fprintf(st.err, "lossbench check: %v\n", err)
			code = exitBad
			continue
		}
		if !r.OK && code == exitOK {
			code = exitFailed
		}
		fmt.Fprintf(st.out, "%s: %s %s: %s\n", dir, r.Verdict, r.Scenario, r.Result.String())
		if r.Verdict == result.Empty {
			fmt.Fprintf(st.out, "  %s\n", result.EmptyText)
		}
		for _, e := range r.Failed() {
			fmt.Fprintf(st.out, "  expectation failed: %s %s, got %g\n", e.Metric, e.Condition, e.Value)
		}
	}
	return code
}

// checkDir re-checks one scenario folder and rewrites its result files.
func checkDir(ctx context.Context, dir string, opt checker.Options) (*result.Result, error) {
	plan, err := scenario.ReadPlan(filepath.Join(dir, scenario.PlanFile))
	if err != nil {
		return nil, fmt.Errorf("%s: not a scenario output folder: %w", dir, err)
	}
	events, err := history.ReadFile(filepath.Join(dir, result.HistoryFile))
	if err != nil {
		return nil, err
	}
	env := result.Collect(ctx)
	var run string
	var notes []string
	old, err := result.ReadFile(filepath.Join(dir, result.FileName))
	switch {
	case err == nil:
		env, run, notes = old.Environment, old.Run, old.Notes
	case errors.Is(err, fs.ErrNotExist):
		run = filepath.Base(filepath.Dir(filepath.Clean(dir)))
	default:
		return nil, err
	}
	r := result.New(plan, checker.Check(events, opt), env)
	r.Run, r.Notes = run, notes
	if err := r.WriteFile(filepath.Join(dir, result.FileName)); err != nil {
		return nil, err
	}
	if err := r.WriteSummary(filepath.Join(dir, result.SummaryFile)); err != nil {
		return nil, err
	}
	return r, nil
}
