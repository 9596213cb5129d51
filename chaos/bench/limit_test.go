package bench

import (
	"math"
	"os"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestCellLimit(t *testing.T) {
	// Issue 16's example: 3,504 fdatasync/s and journal-never at 6,790
	// msg/s with 1 producer give 1 / (1/3504 + 1/6790), about 2,310.
	tsync := 1 / 3504.0
	one := 1 / (tsync + 1/6790.0)
	if one < 2300 || one > 2320 {
		t.Fatalf("example limit %v, want about 2310", one)
	}
	rtt := 1 / 6790.0
	cases := []struct {
		fsync     string
		producers int
		tsync     float64
		never     float64
		want      float64
	}{
		{"batch", 1, tsync, 6790, one},
		{"always", 1, tsync, 6790, one},
		// 16 producers: each at most one message per sync and round
		// trip, 16 / (tsync + rtt) = 36,970, above what the CPU allows
		// without syncs: journal-never's 19,302.
		{"batch", 16, tsync, 19302, 19302},
		{"batch", 16, tsync, 50000, 16 / (tsync + rtt)},
		// always syncs each message: never more than 1/tsync.
		{"always", 16, tsync, 19302, 3504},
		{"never", 16, tsync, 19302, 19302},
		{"interval=10ms", 16, tsync, 19302, 19302},
		{"never", 1, 0, 6790, 6790},
		// Missing figures or an unknown policy: no limit.
		{"batch", 1, 0, 6790, 0},
		{"batch", 1, tsync, 0, 0},
		{"sometimes", 1, tsync, 6790, 0},
	}
	for _, c := range cases {
		if got := CellLimit(c.fsync, c.producers, c.tsync, c.never, rtt); !near(got, c.want) {
			t.Errorf("CellLimit(%q, %d, %v, %v, %v) = %v, want %v", c.fsync, c.producers, c.tsync, c.never, rtt, got, c.want)
		}
	}
	if got := CellLimit("batch", 1, tsync, 6790, 0); got != 0 {
		t.Errorf("no round trip: limit %v, want 0", got)
	}
}

func TestJournalPolicy(t *testing.T) {
	want := map[string]string{
		"memory": "", "journal-always": "always", "journal-batch": "batch",
		"journal-mirror2": "batch", "journal-interval-10ms": "interval=10ms",
		"journal-never": "never", "jdbc-sqlite": "", "journaled-jdbc-postgres": "",
	}
	for _, tg := range DefaultTargets() {
		w, ok := want[tg.Name]
		if !ok {
			continue
		}
		if got := journalPolicy(tg); got != w {
			t.Errorf("journalPolicy(%s) = %q, want %q", tg.Name, got, w)
		}
	}
	if got := journalPolicy(Target{Name: "plain", Args: []string{"--store", "journal"}}); got != "batch" {
		t.Errorf("journal without --fsync: %q, want refbroker's default batch", got)
	}
	for _, tg := range PeerTargets() {
		if got := journalPolicy(tg); got != "" {
			t.Errorf("peer %s: policy %q, want none", tg.Name, got)
		}
	}
}

// compare gives each journal cell its limit from the cell's own fsync
// time (the probe's where the broker gave none) and the journal-never
// cell of the same producers and size; other cells get none.
func TestCompareSetsLimits(t *testing.T) {
	targets := []Target{
		{Name: "journal-batch", Args: []string{"--store", "journal", "--fsync", "batch"}},
		{Name: "journal-always", Args: []string{"--store", "journal", "--fsync", "always"}},
		{Name: NeverTarget, Args: []string{"--store", "journal", "--fsync", "never"}},
		{Name: "memory", Args: []string{"--store", "memory"}},
	}
	cell := func(target string, producers int, msgs, fsyncMs float64) Cell {
		return Cell{Target: target, Figures: Figures{Producers: producers, Size: 1024, MsgsPerSec: msgs, FsyncMs: fsyncMs}}
	}
	rep := &Report{Disk: DiskFigures{SyncsPerSec: 2000}, Cells: []Cell{
		cell("journal-batch", 1, 1000, 0.5),
		cell("journal-always", 1, 900, 0), // no figure: the probe's 0.5 ms
		cell(NeverTarget, 1, 4000, 0),
		cell("memory", 1, 5000, 0),
		cell("journal-batch", 16, 9000, 1),
		cell(NeverTarget, 16, 12000, 0),
		cell("journal-batch", 64, 9000, 1), // no journal-never at 64
	}}
	rep.compare(targets, "journal-batch")
	limit1 := 1 / (0.5e-3 + 1/4000.0) // 1333.3
	checks := []struct {
		i           int
		limit, frac float64
	}{
		{0, limit1, 1000 / limit1},
		{1, limit1, 900 / limit1},
		{2, 4000, 1},
		{3, 0, 0},
		// min(12000, 16 / (1 ms + 1/4000 s)) = 12000
		{4, 12000, 0.75},
		{5, 12000, 1},
		{6, 0, 0},
	}
	for _, c := range checks {
		got := rep.Cells[c.i]
		if !near(got.Limit, c.limit) || !near(got.LimitFraction, c.frac) {
			t.Errorf("cell %d (%s, %d producers): limit %v of %v, want %v of %v",
				c.i, got.Target, got.Producers, got.LimitFraction, got.Limit, c.frac, c.limit)
		}
	}
	if got := rep.Cells[2].RatioToReference; !near(got, 4) {
		t.Errorf("journal-never vs journal-batch: %v, want 4", got)
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 50.
	line := "1234 (ref (b) roker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200\n"
	got, err := parseProcStatCPU(line)
	if err != nil || !near(got.User, 2.5) || !near(got.Sys, 0.5) || !near(got.Total(), 3) {
		t.Fatalf("parseProcStatCPU = %+v, %v; want user 2.5 s, sys 0.5 s", got, err)
	}
	for _, bad := range []string{"", "1234 (x) S 1 2 3", "1234 (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 x 50 0"} {
		if _, err := parseProcStatCPU(bad); err == nil {
			t.Errorf("parseProcStatCPU(%q): no error", bad)
		}
	}
	if _, err := procCPUSeconds(os.Getpid()); err != nil {
		t.Fatalf("own /proc stat: %v", err)
	}
}

// FuzzParseProcStatCPU: any line gives CPU times or an error, never a
// panic, and times only from a line with a command name in parentheses.
func FuzzParseProcStatCPU(f *testing.F) {
	f.Add("1234 (ref (b) roker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200\n")
	f.Add("1 (x) S")
	f.Add(")")
	f.Fuzz(func(t *testing.T, line string) {
		c, err := parseProcStatCPU(line)
		if err != nil {
			return
		}
		if !strings.Contains(line, ")") || c.User < 0 || c.Sys < 0 {
			t.Fatalf("%+v from %q", c, line)
		}
	})
}
