package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/reports/result"
)

// fakeResult is a hand-made result of a scenario that ran 10 s with one
// fault at 3–5 s and lost lost messages sent during it.
func fakeResult(name, strategy, failure string, lost int, unavail float64) *result.Result {
	rec := 1.5
	r := &result.Result{Format: result.Format, Scenario: name, Run: "run-1", Seed: 7, Strategy: strategy, Failure: failure, OK: true,
		Environment: result.Environment{CPUs: 2, Kernel: "Linux 6.1-test"}}
	r.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.SendEndS, r.EndS = 10, 12
	r.Attempted, r.Acknowledged, r.Received, r.Lost = 1000, 1000, 1000-lost, lost
	r.Throughput = 100
	r.Latency = checker.Percentiles{N: 1000, P50: 1, P90: 2, P99: 5, P999: 20, Max: 40}
	r.UnavailableS = unavail
	r.Faults = []checker.FaultWindow{{Name: "kill a1", Window: checker.Window{StartS: 3, EndS: 5}, RecoverS: &rec, LostDuring: lost}}
	r.LostByPhase = map[string]int{"before": 0, "during": lost, "after": 0}
	for t := 0; t < 12; t++ {
		b := checker.Bucket{T: t, Invoked: 100, Acked: 100, Received: 100, P50Ms: 1, MaxMs: 10}
		if t == 3 || t == 4 {
			b.Acked, b.Unknown, b.Lost = 0, 2, lost/2
		}
		r.Timeline = append(r.Timeline, b)
	}
	return r
}

func writeResult(t *testing.T, root string, r *result.Result) string {
	t.Helper()
	dir := filepath.Join(root, r.Run, r.Scenario)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile(filepath.Join(dir, result.FileName)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, result.SummaryFile), []byte("# "+r.Scenario+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeBench(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "bench-1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep := bench.Report{Reference: "journal-batch", Disk: bench.DiskFigures{Dir: dir, SyncsPerSec: 2000, Grouped16PerSec: 30000}}
	for _, tg := range []string{"memory", "journal-batch"} {
		for _, n := range []int{1, 16} {
			c := bench.Cell{Target: tg, Repeats: []float64{900, 1000, 1100}, RatioToReference: 1}
			c.Producers, c.Size, c.MsgsPerSec, c.P50, c.P90, c.P99, c.P999 = n, 1024, 1000, 1, 2, 4, 9
			rep.Cells = append(rep.Cells, c)
		}
	}
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(filepath.Join(dir, BenchFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestClassify(t *testing.T) {
	never := fakeResult("x", "s", "f", 0, 0)
	never.Faults[0].RecoverS = nil
	empty := fakeResult("e", "s", "f", 0, 0)
	empty.Acknowledged, empty.Received = 0, 0
	for _, tc := range []struct {
		s    *Scenario
		want Outcome
	}{
		{&Scenario{Result: fakeResult("a", "s", "f", 0, 1.5)}, NoLoss},
		{&Scenario{Result: fakeResult("b", "s", "f", 3, 0)}, Loss},
		{&Scenario{Result: fakeResult("c", "s", "f", 0, 30)}, Wait},
		{&Scenario{Result: never}, Wait},
		{&Scenario{Result: fakeResult("d", "s", "f", 3, 0), Skipped: "power-cut unsupported"}, NotMeasured},
		{&Scenario{Result: empty}, NotMeasured},
	} {
		if got := Classify(tc.s, DefaultWaitAfter); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.s.Result.Scenario, got, tc.want)
		}
	}
}

func TestMatrixWorstOfRepeats(t *testing.T) {
	a := &Scenario{Result: fakeResult("a", "memory", "crash", 0, 0)}
	b := &Scenario{Result: fakeResult("a", "memory", "crash", 12, 0)}
	c := &Scenario{Result: fakeResult("j", "journal", "crash", 0, 0)}
	m := NewMatrix([]*Scenario{a, b, c}, DefaultWaitAfter)
	cell := m.Cell("memory", "crash")
	if cell.Outcome != Loss || cell.Lost != 12 || len(cell.Measured) != 2 {
		t.Fatalf("memory cell %+v", cell)
	}
	if m.Cell("journal", "crash").Outcome != NoLoss || m.Cell("journal", "nothing") != nil {
		t.Fatal("journal cell")
	}
	if strings.Join(m.Strategies, ",") != "journal,memory" || strings.Join(m.Failures, ",") != "crash" {
		t.Fatalf("axes %v %v", m.Strategies, m.Failures)
	}
}

func TestWriteReport(t *testing.T) {
	root := t.TempDir()
	writeResult(t, root, fakeResult("memory-crash", "memory", "broker-crash", 40, 1))
	writeResult(t, root, fakeResult("journal-crash", "journal-batch", "broker-crash", 0, 1))
	skipped := fakeResult("never-power-cut", "journal-never", "power-cut", 0, 0)
	skipped.Notes = []string{"skipped: power-cut unsupported"}
	writeResult(t, root, skipped)
	writeBench(t, root)

	in, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Scenarios) != 3 || len(in.Benches) != 1 {
		t.Fatalf("loaded %d scenarios, %d benches", len(in.Scenarios), len(in.Benches))
	}
	out := filepath.Join(root, "report")
	rep, err := Write(out, in, Options{Host: &result.Environment{CPUs: 2, Kernel: "Linux test"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tradeoff", "loss-matrix", "throughput-bench-1", "latency-bench-1", "throughput-scenarios", "latency-scenarios",
		"timeline-journal-crash", "timeline-never-power-cut", "timeline-memory-crash", "lost-memory-crash"}
	var got []string
	for _, f := range rep.Figures {
		got = append(got, f.Name)
		b, err := os.ReadFile(filepath.Join(out, f.PNG))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() < 600 || img.Bounds().Dy() < 300 {
			t.Fatalf("%s: %v, bounds %v", f.PNG, err, img.Bounds())
		}
		svg, err := os.ReadFile(filepath.Join(out, f.SVG))
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Fatalf("%s: %v", f.SVG, err)
		}
		if f.Caption == "" || f.Title == "" {
			t.Errorf("%s has no title or caption", f.Name)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("figures %v, want %v", got, want)
	}

	html, err := os.ReadFile(rep.HTML())
	if err != nil {
		t.Fatal(err)
	}
	h := string(html)
	if n := strings.Count(h, `src="data:image/png;base64,`); n != len(want) {
		t.Errorf("%d inlined images, want %d", n, len(want))
	}
	// Every inlined image is the figure's PNG, byte for byte.
	for i, m := range regexp.MustCompile(`src="data:image/png;base64,([A-Za-z0-9+/=]+)"`).FindAllStringSubmatch(h, -1) {
		b, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("inlined image %d is not a PNG: %v", i, err)
		}
	}
	if regexp.MustCompile(`(src|href)="https?:`).MatchString(h) {
		t.Error("report.html refers to the network")
	}
	for _, s := range []string{`<td class="loss">40 lost`, `<td class="noloss">0 lost`, `<td class="na">skipped`,
		`href="../run-1/memory-crash/summary.md"`, "run run-1", "seed 7", "2 CPUs, Linux 6.1-test",
		`id="dr-matrix"`, `<td class="loss" title="memory × broker crash`, "lost 40 of 1000 (4.0%)", `<td class="none"`, "no scenario",
		`<td class="na" title="memory × disk lost`, `href="#s2-memory-crash-timeline"`, `href="#s2-memory-crash-lost"`,
		`id="s2-memory-crash-timeline"`, `id="s2-memory-crash-lost"`, `id="fig-tradeoff"`} {
		if !strings.Contains(h, s) {
			t.Errorf("report.html lacks %q", s)
		}
	}
	md, err := os.ReadFile(rep.Markdown())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| memory | ❌ 40 lost | – |", "| journal-batch | ✅ 0 lost | – |", "[summary](../run-1/memory-crash/summary.md)", "plots/loss-matrix.png"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report.md lacks %q:\n%s", s, md)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNothing) {
		t.Fatalf("empty folder: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, result.FileName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("broken result.json: %v", err)
	}
}
