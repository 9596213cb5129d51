package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/runner"
	"github.com/lossbench/lossbench/reports/result"
)

// checkedInBaseline is the repository's baseline, the one make gate uses.
const checkedInBaseline = "../../scenarios/baseline.yaml"

// gateResult writes a hand-made result.json under dir/run-1/name.
func gateResult(t *testing.T, dir, name, strategy, failure string, lost, dup int) {
	t.Helper()
	r := &result.Result{Format: result.Format, Scenario: name, Run: "run-1", Strategy: strategy, Failure: failure, OK: true}
	r.Acknowledged, r.Lost, r.Duplicated, r.UnavailableS = 100, lost, dup, 1
	d := filepath.Join(dir, "run-1", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile(filepath.Join(d, result.FileName)); err != nil {
		t.Fatal(err)
	}
}

func TestGateExitCodes(t *testing.T) {
	pass := t.TempDir()
	gateResult(t, pass, "journal-batch-kill9", "journal-batch", "broker-crash", 0, 3)
	gateResult(t, pass, "memory-broker-crash", "memory", "broker-crash", 900, 0)
	code, out, errs := runMain("gate", "--baseline", checkedInBaseline, pass)
	if code != exitOK || !strings.Contains(out, "0 failed") {
		t.Fatalf("passing run: exit %d\n%s%s", code, out, errs)
	}
	if b, err := os.ReadFile(filepath.Join(pass, "gate.xml")); err != nil || !strings.Contains(string(b), `failures="0"`) {
		t.Fatalf("gate.xml: %v\n%s", err, b)
	}

	lossy := t.TempDir()
	gateResult(t, lossy, "journal-batch-kill9", "journal-batch", "broker-crash", 1, 0)
	junit := filepath.Join(t.TempDir(), "junit.xml")
	code, out, errs = runMain("gate", "--baseline", checkedInBaseline, "--junit", junit, lossy)
	if code != exitFailed || !strings.Contains(out, "journal-batch-kill9 lost 1 acknowledged messages") {
		t.Fatalf("one lost message: exit %d\n%s%s", code, out, errs)
	}
	if b, err := os.ReadFile(junit); err != nil || !strings.Contains(string(b), `failures="1"`) {
		t.Fatalf("junit: %v\n%s", err, b)
	}

	unknown := t.TempDir()
	gateResult(t, unknown, "raid1-disk-lost", "raid1", "disk-lost", 0, 0)
	code, out, _ = runMain("gate", "--baseline", checkedInBaseline, unknown)
	if code != exitFailed || !strings.Contains(out, `no baseline cell for row "raid1"`) {
		t.Fatalf("unbaselined scenario: exit %d\n%s", code, out)
	}

	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("cells:\n  - {row: a, failure: b, lost: lots, duplicated: 0, unavailable_s: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runMain("gate", "--baseline", broken, pass)
	if code != exitBad || !strings.Contains(errs, broken+":2:") {
		t.Fatalf("broken baseline: exit %d: %s", code, errs)
	}
	code, _, errs = runMain("gate", "--baseline", checkedInBaseline, t.TempDir())
	if code != exitBad || !strings.Contains(errs, "no result.json or bench.json") {
		t.Fatalf("empty folder: exit %d: %s", code, errs)
	}
}

// TestGateCatchesUnsafeBroker is the proof the gate works: the same kill -9
// scenario run with refbroker's memory store labelled as the journal-batch
// strategy (it receipts a SEND without making it durable at all, the limit
// of "acknowledge before the fsync") fails the checked-in baseline, and the
// real journal passes it.
func TestGateCatchesUnsafeBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two real scenarios with refbroker (about 15 s)")
	}
	bin, err := runner.FindBroker(context.Background(), "", t.TempDir())
	if err != nil {
		t.Skipf("refbroker does not build: %v", err)
	}
	for _, tc := range []struct {
		file string
		gate int
	}{
		{"testdata/gate/unsafe-journal-batch-kill9.yaml", exitFailed},
		{"testdata/gate/journal-batch-kill9.yaml", exitOK},
	} {
		out := t.TempDir()
		code, stdout, errs := runMain("run", "--driver", "local", "--out", out, "--run-id", "r", "--broker-bin", bin, tc.file)
		t.Logf("%s: exit %d\n%s", tc.file, code, stdout)
		if code == exitBad {
			t.Fatalf("run %s: %s", tc.file, errs)
		}
		if _, err := os.Stat(filepath.Join(out, "r", "report.html")); err != nil {
			t.Errorf("run wrote no report: %v", err)
		}
		code, stdout, errs = runMain("gate", "--baseline", checkedInBaseline, filepath.Join(out, "r"))
		t.Logf("gate: exit %d\n%s%s", code, stdout, errs)
		if code != tc.gate {
			t.Fatalf("%s: gate exit %d, want %d", tc.file, code, tc.gate)
		}
		if tc.gate == exitFailed && !strings.Contains(stdout, "strategy journal-batch promises none") {
			t.Errorf("the gate failed for another reason than the loss:\n%s", stdout)
		}
	}
}
