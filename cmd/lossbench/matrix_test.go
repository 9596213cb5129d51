package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/runner"
	"github.com/lossbench/lossbench/reports/report"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestMatrixCommand runs lossbench matrix on two small scenarios with two
// seeds each, without the bench: a memory broker killed (a measured cell,
// loss) and a broker that exits at once (every run errors, is reported in
// its cell, and the matrix goes on). Exit 2 for the errored runs.
func TestMatrixCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs refbroker for about 15 s")
	}
	bin, err := runner.FindBroker(context.Background(), "", t.TempDir())
	if err != nil {
		t.Skipf("refbroker does not build: %v", err)
	}
	out := t.TempDir()
	code, stdout, errs := runMain("matrix", "--seeds", "2", "--driver", "local", "--no-bench", "--out", out, "--run-id", "m",
		"--broker-bin", bin, "testdata/matrix/memory-crash.yaml", "testdata/matrix/broker-exits.yaml")
	t.Logf("exit %d\n%s", code, stdout)
	if code != exitBad {
		t.Errorf("exit %d, want 2 (runs errored)", code)
	}
	root := filepath.Join(out, "m")
	for _, seed := range []string{"seed-1", "seed-2"} {
		if _, err := os.Stat(filepath.Join(root, seed, "memory-crash", "result.json")); err != nil {
			t.Errorf("%s: %v", seed, err)
		}
	}
	e, err := report.ReadErrors(filepath.Join(root, report.ErrorsFile))
	if err != nil || len(e) != 2 || e[0].Row != "journal-batch" || e[0].Column != "disk-lost" || e[1].Seed != 2 {
		t.Errorf("errors.json: %+v %v", e, err)
	}
	for _, s := range []string{"memory", "n/a", "ERROR", "ERROR journal-batch × disk-lost: broker-exits seed 2", "replay: lossbench run --seed 2 testdata/matrix/broker-exits.yaml", "not benched", "report: "} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	for _, s := range []string{"run 1/4 memory × broker-crash seed 1 (1/2)", "run 4/4 journal-batch × disk-lost seed 2 (2/2)", "left]"} {
		if !strings.Contains(errs, s) {
			t.Errorf("progress lacks %q:\n%s", s, errs)
		}
	}
	in, err := report.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	m := report.NewDRMatrix(in, report.DefaultWaitAfter)
	c := m.Cell("memory", "broker-crash")
	if c.State != report.StateMeasured || len(c.Runs) != 2 || c.Lost == 0 || c.RPOS == nil {
		t.Errorf("memory × broker-crash: %+v", c)
	}
	if b, err := os.ReadFile(filepath.Join(root, "matrix.txt")); err != nil || !strings.Contains(string(b), "memory") {
		t.Errorf("matrix.txt: %v", err)
	}
}

func TestMatrixBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"matrix", "--seeds", "0", "testdata/matrix/memory-crash.yaml"},
		{"matrix", "--run-id", "../x", "testdata/matrix/memory-crash.yaml"},
		{"matrix", "no-such-file.yaml"},
	} {
		if code, _, errs := runMain(args...); code != exitBad || errs == "" {
			t.Errorf("%v: exit %d, want 2 with a message", args, code)
		}
	}
}

// TestEveryRowHasABenchTarget: each row of the DR matrix names a bench
// target --targets knows, so the matrix's bench measures every row (its
// throughput and p99 columns and the trade-off chart) even when no
// scenario's strategy is a target's name.
func TestEveryRowHasABenchTarget(t *testing.T) {
	known := map[string]bool{}
	for _, tg := range allTargets() {
		known[tg.Name] = true
	}
	for _, r := range scenario.MatrixRows {
		if !known[r.Bench] {
			t.Errorf("row %s: bench target %q is not a target of lossbench bench", r.Name, r.Bench)
		}
	}
}
