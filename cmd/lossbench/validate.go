package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

func init() {
	register(command{
		name:    "validate",
		usage:   "FILE…",
		summary: "check scenario files and print every error",
		help: `Parses each scenario file strictly and prints "FILE: ok", or every
problem as FILE:LINE:COL: message (on standard error). --plan also prints the fault timeline
the scenario's seed (or --seed) resolves to.
Exit 0 when every file is valid, 2 otherwise.`,
		run: runValidate,
	})
}

func runValidate(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	showPlan := fs.Bool("plan", false, "print the resolved fault timeline of each valid file")
	seed := fs.Int64("seed", 0, "resolve with this seed instead of the scenario's (with --plan)")
	files, code, ok := cmd.parse(fs, args)
	if !ok {
		return code
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if len(files) == 0 {
		fmt.Fprintf(st.err, "lossbench validate: no files given\n")
		fs.Usage()
		return exitBad
	}
	code = exitOK
	for _, f := range files {
		s, ok := loadScenario(st, f)
		if !ok {
			code = exitBad
			continue
		}
		fmt.Fprintf(st.out, "%s: ok\n", f)
		if *showPlan {
			sd := s.Seed
			if seedSet {
				sd = *seed
			}
			p, err := s.Resolve(sd)
			if err != nil {
				fmt.Fprintf(st.err, "%s: %v\n", f, err)
				code = exitBad
				continue
			}
			fmt.Fprintf(st.out, "  seed %d\n", p.Seed)
			for _, step := range p.Steps {
				fmt.Fprintf(st.out, "  %8s  %s%s\n", step.At, step.Name(), healText(step))
			}
			for _, step := range p.Skipped {
				fmt.Fprintf(st.out, "  skipped   %s (chance)\n", step.Name())
			}
		}
	}
	return code
}

func healText(s scenario.Step) string {
	if at, ok := s.Heal(); ok {
		return fmt.Sprintf(" until %s", at)
	}
	return " until recovery"
}

// loadScenario loads file, printing every error (file:line:col: message)
// to st.err; ok is false when the file is unusable.
func loadScenario(st *stdio, file string) (*scenario.Scenario, bool) {
	s, err := scenario.Load(file)
	if err == nil {
		return s, true
	}
	var list scenario.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(st.err, e.Error())
		}
	} else {
		fmt.Fprintf(st.err, "%s: %v\n", file, err)
	}
	return nil, false
}

// loadScenarios loads every file, printing each one's errors; ok is false
// when any failed.
func loadScenarios(st *stdio, files []string) ([]*scenario.Scenario, bool) {
	var scs []*scenario.Scenario
	ok := true
	for _, f := range files {
		s, good := loadScenario(st, f)
		if !good {
			ok = false
			continue
		}
		scs = append(scs, s)
	}
	return scs, ok
}
