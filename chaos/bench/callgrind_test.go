package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCallgrindTotal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, text string
		want       uint64
		bad        bool
	}{
		{"totals", "version: 1\nevents: Ir\nsummary: 10\nfn=x\n1 5\ntotals: 12345\n", 12345, false},
		{"summary only", "events: Ir\nsummary: 777\n", 777, false},
		{"several events", "events: Ir Dr\ntotals: 40 7\n", 40, false},
		{"none", "events: Ir\nfn=x\n", 0, true},
		{"garbage", "totals: lots\n", 0, true},
		{"negative", "totals: -5\n", 0, true},
		{"not a count", "totals: 1.5e9\n", 0, true},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		if err := os.WriteFile(p, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := callgrindTotal(p)
		if c.bad {
			if err == nil {
				t.Errorf("%s: got %v, want an error", c.name, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

func TestCallgrindLaunchKeepsGODEBUG(t *testing.T) {
	t.Setenv("GODEBUG", "madvdontneed=1")
	l := callgrindLaunch("/x")
	if !slices.Contains(l.env, "GODEBUG=madvdontneed=1,asyncpreemptoff=1,cpu.rdtscp=off") {
		t.Errorf("env lacks the merged GODEBUG: %q", l.env)
	}
	n := 0
	for _, kv := range l.env {
		if strings.HasPrefix(kv, "GODEBUG=") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d GODEBUG entries, want 1", n)
	}
	if l.wrap[0] != "valgrind" || l.wrap[len(l.wrap)-1] != "--callgrind-out-file=/x/callgrind.out" {
		t.Errorf("wrap %q", l.wrap)
	}
}

func TestCallgrindRefusesSeveralProcesses(t *testing.T) {
	if err := CallgrindAvailable(); err != nil {
		t.Skip(err)
	}
	for _, tg := range append(ReplicatedTargets(), DefaultTargets()...) {
		if tg.Replica == "" && !tg.Standby {
			continue
		}
		m := &Matrix{Targets: []Target{tg}, Producers: []int{1}, Sizes: []int{8}, Duration: time.Second, Callgrind: true, WorkDir: t.TempDir()}
		if _, err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "callgrind measures one refbroker") {
			t.Errorf("%s: %v", tg.Name, err)
		}
	}
}

// TestCallgrindCell measures journal-batch under callgrind for a short
// window (about 15 s: valgrind's start and a slow broker) and checks that
// instructions per message are counted, within sane bounds, and that the
// profile stays in the cell's folder.
func TestCallgrindCell(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a broker under valgrind takes seconds")
	}
	if err := CallgrindAvailable(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "refbroker")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lossbench/lossbench/cmd/refbroker").CombinedOutput(); err != nil {
		t.Fatalf("build refbroker: %v\n%s", err, out)
	}
	var tg Target
	for _, d := range DefaultTargets() {
		if d.Name == "journal-batch" {
			tg = d
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m := &Matrix{
		BrokerBin: bin, Targets: []Target{tg}, Producers: []int{4}, Sizes: []int{1024},
		Warmup: 500 * time.Millisecond, Duration: 2 * time.Second,
		Reference: tg.Name, WorkDir: filepath.Join(dir, "work"), Logf: t.Logf, Callgrind: true,
	}
	if err := os.MkdirAll(m.WorkDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Run(ctx)
	defer assertNoProcessUnder(t, m.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Cells[0]
	// A persistent 1 KiB message costs tens of thousands of instructions
	// (about 40,000 on 2026-12-02).
	if c.InstrPerMsg < 1000 || c.InstrPerMsg > 2e6 || c.Acknowledged == 0 {
		t.Fatalf("instructions per message %.0f over %d messages", c.InstrPerMsg, c.Acknowledged)
	}
	profiles, _ := filepath.Glob(filepath.Join(m.WorkDir, "*", callgrindOut+".1"))
	if len(profiles) != 1 {
		t.Errorf("profiles %q, want one in the cell's folder", profiles)
	}
	t.Logf("journal-batch under callgrind: %.0f instructions per message, %d acknowledged", c.InstrPerMsg, c.Acknowledged)
}

// FuzzParseCallgrindTotal: any text gives a count or an error naming the
// file, never a panic; a totals line wins over a summary line.
func FuzzParseCallgrindTotal(f *testing.F) {
	f.Add("events: Ir\nsummary: 10\ntotals: 12\n")
	f.Add("summary: 7\n")
	f.Add("totals:\n")
	f.Add("totals: 18446744073709551616\n")
	f.Fuzz(func(t *testing.T, text string) {
		n, err := parseCallgrindTotal(strings.NewReader(text), "p")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if !strings.Contains(text, "totals:") && !strings.Contains(text, "summary:") {
			t.Fatalf("count %d from text without totals or summary", n)
		}
	})
}
