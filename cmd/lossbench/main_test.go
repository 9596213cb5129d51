package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/chaos/runner"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// runMain runs lossbench in-process and returns exit code, stdout, stderr.
func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &stdio{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	cases := []struct {
		args     []string
		code     int
		contains []string
	}{
		{[]string{"--help"}, exitOK, []string{"commands:", "validate", "check", "Exit codes"}},
		{[]string{"help"}, exitOK, []string{"validate"}},
		{nil, exitBad, []string{"usage: lossbench COMMAND"}},
		{[]string{"frobnicate"}, exitBad, []string{`unknown command "frobnicate"`}},
		{[]string{"validate", "--help"}, exitOK, []string{"usage: lossbench validate FILE…", "-plan"}},
		{[]string{"help", "check"}, exitOK, []string{"usage: lossbench check", "-unavailable-after"}},
		{[]string{"check", "-h"}, exitOK, []string{"-lost-sample"}},
		{[]string{"validate", "--no-such-flag"}, exitBad, []string{"flag provided but not defined"}},
		{[]string{"validate"}, exitBad, []string{"no files given"}},
		{[]string{"check"}, exitBad, []string{"no folder given"}},
		{[]string{"run", "--help"}, exitOK, []string{"-driver", "auto (", "local ("}},
		{[]string{"run", "--driver", "vm", "../../scenarios/suite/journal-batch-kill9.yaml"}, exitBad, []string{`--driver vm: driver "vm": not one of auto, docker, local`}},
		{[]string{"run", "--driver", "local", "--refbroker-image", "x/y:z", "../../scenarios/suite/journal-batch-kill9.yaml"}, exitBad, []string{"--refbroker-image x/y:z: the local driver runs no images"}},
		{[]string{"run", "--driver", "local", "--postgres-image", "postgres:15", "../../scenarios/suite/jdbc-postgres-db-lost.yaml"}, exitBad, []string{"--postgres-image postgres:15: the local driver runs no images"}},
		// lossbench matrix takes lossbench run's flags (runFlags).
		{[]string{"matrix", "--help"}, exitOK, []string{"-refbroker-image", "-postgres-image", "-mariadb-image", "-send-timeout", "-broker-bin"}},
		{[]string{"matrix", "--driver", "local", "--mariadb-image", "mariadb:10.11", "../../scenarios/suite/memory-broker-crash.yaml"}, exitBad, []string{"lossbench matrix: --mariadb-image mariadb:10.11: the local driver runs no images"}},
		{[]string{"matrix", "--driver", "vm", "../../scenarios/suite/memory-broker-crash.yaml"}, exitBad, []string{`lossbench matrix: --driver vm: driver "vm": not one of`}},
	}
	for _, c := range cases {
		code, out, errs := runMain(c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
		for _, s := range c.contains {
			if !strings.Contains(out+errs, s) {
				t.Errorf("%v: output lacks %q:\n%s%s", c.args, s, out, errs)
			}
		}
	}
}

func TestRegisterRejectsDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering validate twice did not panic")
		}
	}()
	register(command{name: "validate", run: runValidate})
}

func TestValidate(t *testing.T) {
	suite, _ := filepath.Glob("../../scenarios/suite/*.yaml")
	if len(suite) < 4 {
		t.Fatalf("suite has %d files", len(suite))
	}
	matrix, _ := filepath.Glob("../../scenarios/matrix/*.yaml")
	if len(matrix) < 2 {
		t.Fatalf("matrix has %d files", len(matrix))
	}
	suite = append(suite, matrix...)
	code, out, errs := runMain(append([]string{"validate", "--plan"}, suite...)...)
	if code != exitOK || errs != "" {
		t.Fatalf("suite: exit %d\n%s%s", code, out, errs)
	}
	for _, f := range suite {
		if !strings.Contains(out, f+": ok\n") {
			t.Errorf("no ok line for %s:\n%s", f, out)
		}
	}
	if !strings.Contains(out, "kill a1 until") {
		t.Errorf("--plan printed no timeline:\n%s", out)
	}

	broken := "../../scenarios/scenario/testdata/broken/dangling.yaml"
	code, out, errs = runMain("validate", suite[0], broken, "no-such-file.yaml")
	if code != exitBad {
		t.Errorf("broken: exit %d, want 2", code)
	}
	if !strings.Contains(out, suite[0]+": ok") {
		t.Errorf("the good file is not reported ok:\n%s", out)
	}
	for _, want := range []string{broken + `:13:24: disk "d1" node: unknown node "a9"`, "no-such-file.yaml: cannot read"} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors lack %q:\n%s", want, errs)
		}
	}
	if n := strings.Count(errs, broken+":"); n != 13 {
		t.Errorf("%d errors for %s, want all 13", n, broken)
	}
}

const checkScenario = `
name: check-me
strategy: memory
failure: broker-crash
topology:
  sites: [a]
  nodes: [{name: a1, site: a, broker: {store: memory}}]
workload:
  destination: /queue/q
  producers: {count: 1}
  consumers: {count: 1}
  duration: 10s
faults:
  - {kind: kill, at: 1s, node: a1}
expectations:
  lost: "%s"
`

// scenarioDir writes a scenario output folder: plan.json and a history in
// which one of two acknowledged messages is lost.
func scenarioDir(t *testing.T, lostCond string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run-1", "check-me")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Parse("check.yaml", []byte(strings.Replace(checkScenario, "%s", lostCond, 1)))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Resolve(s.Seed)
	if err := p.WriteFile(filepath.Join(dir, scenario.PlanFile)); err != nil {
		t.Fatal(err)
	}
	h, err := history.Create(filepath.Join(dir, result.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"m1", "m2"} {
		h.Add(history.Event{Time: t0.Add(time.Duration(i) * time.Second), Type: history.Invoke, Producer: "p0", Seq: uint64(i + 1), ID: id, Attempt: 1})
		h.Add(history.Event{Time: t0.Add(time.Duration(i)*time.Second + time.Millisecond), Type: history.OK, Producer: "p0", Seq: uint64(i + 1), ID: id, Attempt: 1})
	}
	h.Add(history.Event{Time: t0.Add(3 * time.Second), Type: history.Recv, Process: "c0", Producer: "p0", Seq: 1, ID: "m1"})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheck(t *testing.T) {
	cases := []struct {
		cond string
		code int
		line string
	}{
		{">0", exitOK, "PASS check-me: attempted 2, acknowledged 2, received 1, lost 1"},
		{"0", exitFailed, "expectation failed: lost == 0, got 1"},
	}
	for _, c := range cases {
		dir := scenarioDir(t, c.cond)
		code, out, errs := runMain("check", dir)
		if code != c.code || !strings.Contains(out, c.line) {
			t.Errorf("lost %q: exit %d, want %d; output:\n%s%s", c.cond, code, c.code, out, errs)
		}
		r, err := result.ReadFile(filepath.Join(dir, result.FileName))
		if err != nil {
			t.Fatal(err)
		}
		if r.Lost != 1 || r.Run != "run-1" || r.Scenario != "check-me" || r.OK != (c.code == exitOK) {
			t.Errorf("result.json: lost %d run %q ok %v", r.Lost, r.Run, r.OK)
		}
		md, err := os.ReadFile(filepath.Join(dir, result.SummaryFile))
		if err != nil || !strings.Contains(string(md), "# check-me:") {
			t.Errorf("summary.md: %v\n%s", err, md)
		}
		// A second check keeps the environment the first recorded.
		r.Environment.Driver = "recorded-driver"
		if err := r.WriteFile(filepath.Join(dir, result.FileName)); err != nil {
			t.Fatal(err)
		}
		runMain("check", dir)
		again, _ := result.ReadFile(filepath.Join(dir, result.FileName))
		if again.Environment.Driver != "recorded-driver" {
			t.Errorf("re-check replaced the recorded environment: %+v", again.Environment)
		}
	}

	code, _, errs := runMain("check", t.TempDir())
	if code != exitBad || !strings.Contains(errs, "not a scenario output folder") {
		t.Errorf("empty folder: exit %d: %s", code, errs)
	}
}

// TestRunTopicIsBadInput: a destination refbroker refuses is an error of
// the scenario file (file:line:col, exit 2) before anything starts, not a
// run that acknowledges nothing and passes.
func TestRunTopicIsBadInput(t *testing.T) {
	file := "../../scenarios/scenario/testdata/broken/destination-topic.yaml"
	for _, cmd := range []string{"validate", "run"} {
		code, out, errs := runMain(cmd, "--out", t.TempDir(), file)
		if cmd == "validate" {
			code, out, errs = runMain(cmd, file)
		}
		if code != exitBad || !strings.Contains(errs, file+`:9:16: workload destination "/topic/x": refbroker (node a1) serves queues only`) {
			t.Errorf("%s: exit %d, want 2 and the destination's place:\n%s%s", cmd, code, out, errs)
		}
	}
}

// emptyScenario is a run whose every send refbroker refuses (the body is
// larger than --max-body): nothing is acknowledged, so nothing can be lost,
// and lost: 0 holds trivially.
const emptyScenario = `
name: nothing-acked
strategy: journal-batch
failure: none
topology:
  sites: [a]
  nodes: [{name: a1, site: a, broker: {store: memory, args: [--max-body, "16"]}}]
workload:
  destination: /queue/q
  producers: {count: 1, rate: 20, size: 1KiB}
  consumers: {count: 1}
  duration: 1s
  recovery: {wait: 0, drain: 3s, quiet: 300ms}
expectations:
  lost: 0
`

// TestRunNothingAcknowledgedFails runs a scenario in which nothing is
// acknowledged through the run command: verdict EMPTY, exit 1, and
// result.json, summary.md and the report say so.
func TestRunNothingAcknowledgedFails(t *testing.T) {
	bin, err := runner.FindBroker(context.Background(), "", t.TempDir())
	if err != nil {
		t.Skipf("refbroker does not build: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "nothing-acked.yaml")
	if err := os.WriteFile(file, []byte(emptyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	code, stdout, errs := runMain("run", "--driver", "local", "--out", out, "--run-id", "r", "--broker-bin", bin, file)
	t.Logf("exit %d\n%s%s", code, stdout, errs)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1: a run that acknowledged nothing must not pass", code)
	}
	if !regexp.MustCompile(`nothing-acked\s+EMPTY`).MatchString(stdout) {
		t.Errorf("the table does not say EMPTY:\n%s", stdout)
	}
	r, err := result.ReadFile(filepath.Join(out, "r", "nothing-acked", result.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if r.Acknowledged != 0 || r.Attempted == 0 || r.OK || r.Verdict != result.Empty {
		t.Fatalf("result.json: attempted %d acknowledged %d ok %v verdict %q", r.Attempted, r.Acknowledged, r.OK, r.Verdict)
	}
	for _, f := range []string{filepath.Join("nothing-acked", result.SummaryFile), "report.md"} {
		b, err := os.ReadFile(filepath.Join(out, "r", f))
		if err != nil || !strings.Contains(string(b), result.Empty) {
			t.Errorf("%s does not say %s: %v\n%s", f, result.Empty, err, b)
		}
	}
}

// TestRunIDStaysInOut: --run-id names a folder inside --out; one that
// climbs out of it ("../") is bad input, and nothing is made outside.
func TestRunIDStaysInOut(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(checkScenario, "%s", "0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../escape", "a/../../escape", "/tmp/escape", ".."} {
		code, out, errs := runMain("run", "--out", filepath.Join(dir, "out"), "--run-id", id, "--broker-bin", "/bin/false", file)
		if code != exitBad || !strings.Contains(errs, "--run-id") {
			t.Errorf("--run-id %q: exit %d, want 2 naming the flag:\n%s%s", id, code, out, errs)
		}
		if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
			t.Fatalf("--run-id %q made a folder outside --out", id)
		}
	}
}

// TestAbsurdValuesAreRefused: values no harness can run are refused at
// validation with the limit, each at its place.
func TestAbsurdValuesAreRefused(t *testing.T) {
	file := "../../scenarios/scenario/testdata/broken/limits.yaml"
	code, out, errs := runMain("validate", file)
	for _, want := range []string{
		file + ":1:7: name: empty name",
		file + ":10:22: producers count: 100000000 is more than the limit of 10000",
		file + `:12:13: workload duration: bad duration "876000h": more than the limit of 24h`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors lack %q", want)
		}
	}
	if code != exitBad {
		t.Errorf("exit %d, want 2:\n%s%s", code, out, errs)
	}
}
