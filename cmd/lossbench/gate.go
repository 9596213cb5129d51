package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lossbench/lossbench/reports/gate"
	"github.com/lossbench/lossbench/reports/report"
)

func init() {
	register(command{
		name:    "gate",
		usage:   "--baseline FILE [--junit PATH] [-v] DIR…",
		summary: "fail when a run loses, duplicates or stalls more than the baseline allows, or gets slower",
		help: `Compares the results under DIR (result.json per scenario, bench.json) with
a baseline file (scenarios/baseline.yaml): per DR matrix cell (the row a
scenario's matrix: key places it in, its failure; optionally narrowed to
one scenario strategy) the allowed lost, duplicated, unavailable and
dual-active seconds, per bench target a throughput floor as a ratio to a
reference measured in the same bench run.

Prints a table of what regressed and writes JUnit XML (default
DIR/gate.xml) so CI systems show each check.

A scenario whose cell the baseline does not name fails the gate; a skipped
scenario, a cell no scenario ran and a floor without a bench are listed as
skipped.

Exit 0 when nothing regressed, 1 when a check failed, 2 on bad input (a
broken baseline is reported as file:line: what).`,
		run: runGate,
	})
}

func runGate(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	baseline := fs.String("baseline", "", "baseline `FILE` (required), e.g. scenarios/baseline.yaml")
	junit := fs.String("junit", "", "where to write JUnit XML (default: the first DIR/gate.xml; \"-\" for none)")
	verbose := fs.Bool("v", false, "list passing checks too")
	dirs, code, ok := cmd.parse(fs, args)
	if !ok {
		return code
	}
	if *baseline == "" || len(dirs) == 0 {
		fmt.Fprintf(st.err, "lossbench gate: --baseline FILE and at least one DIR are required\n")
		fs.Usage()
		return exitBad
	}
	b, err := gate.Load(*baseline)
	if err != nil {
		var list gate.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(st.err, e.Error())
			}
		} else {
			fmt.Fprintf(st.err, "lossbench gate: %v\n", err)
		}
		return exitBad
	}
	in, err := report.Load(dirs...)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench gate: %v\n", err)
		return exitBad
	}
	v := gate.Evaluate(b, in)
	if err := v.WriteTable(st.out, *verbose); err != nil {
		fmt.Fprintf(st.err, "lossbench gate: %v\n", err)
		return exitBad
	}
	if *junit == "" {
		*junit = filepath.Join(dirs[0], "gate.xml")
	}
	if *junit != "-" {
		if err := v.WriteJUnit(*junit); err != nil {
			fmt.Fprintf(st.err, "lossbench gate: %v\n", err)
			return exitBad
		}
		fmt.Fprintf(st.out, "junit: %s\n", *junit)
	}
	if !v.OK() {
		return exitFailed
	}
	return exitOK
}
