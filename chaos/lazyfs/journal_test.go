package lazyfs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
)

// The journal writer runs in a child process (this test binary again),
// so that its death closes every descriptor and releases the journal's
// lock, as a broker's would.
const (
	envDir  = "LAZYFS_TEST_JOURNAL_DIR"
	envSync = "LAZYFS_TEST_JOURNAL_SYNC"
	envN    = "LAZYFS_TEST_JOURNAL_N"
)

const journalSegment = 64 << 10

// TestJournalWriterHelper is the child: it writes N messages one Write
// each, prints how many Writes returned, and exits without Close.
func TestJournalWriterHelper(t *testing.T) {
	dir := os.Getenv(envDir)
	if dir == "" {
		t.Skip("helper process for TestJournalPowerCut")
	}
	pol, err := journal.ParseSyncPolicy(os.Getenv(envSync))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv(envN))
	s, err := journal.Open(dir, journal.Options{Sync: pol, SegmentSize: journalSegment})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recover(context.Background(), func(*store.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	acked := 0
	for i := range n {
		m := &store.Message{Queue: "/queue/q", Body: []byte(fmt.Sprintf("message %d %s", i, strings.Repeat("x", 200)))}
		if err := s.Write(context.Background(), &store.Batch{Adds: []*store.Message{m}}); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	fmt.Printf("ACKED %d\n", acked)
	os.Exit(0) // no Close: nothing flushed that the policy did not flush
}

// TestJournalPowerCut proves the model on the real journal: under
// fsync batch every acknowledged Write survives a power cut; under fsync
// never, acknowledged Writes are lost.
func TestJournalPowerCut(t *testing.T) {
	for _, tc := range []struct {
		sync     string
		wantLoss bool
	}{{"batch", false}, {"never", true}} {
		t.Run(tc.sync, func(t *testing.T) {
			l, _, mnt := mount(t)
			dir := filepath.Join(mnt, "journal")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			const n = 1000
			cmd := exec.Command(os.Args[0], "-test.run=^TestJournalWriterHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), envDir+"="+dir, envSync+"="+tc.sync, envN+"="+strconv.Itoa(n))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("writer: %v\n%s", err, out)
			}
			var acked int
			for _, line := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(line, "ACKED "); ok {
					acked, _ = strconv.Atoi(v)
				}
			}
			if acked != n {
				t.Fatalf("writer acknowledged %d of %d:\n%s", acked, n, out)
			}
			st := l.PowerCut()
			s, err := journal.Open(dir, journal.Options{SegmentSize: journalSegment, Repair: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := 0
			if err := s.Recover(context.Background(), func(*store.Message) error { got++; return nil }); err != nil {
				t.Fatal(err)
			}
			lost := acked - got
			t.Logf("fsync %s: acknowledged %d, recovered %d, lost %d; the cut dropped %d bytes", tc.sync, acked, got, lost, st.LastDropped)
			if tc.wantLoss && lost <= 0 {
				t.Fatalf("fsync never lost nothing in a power cut: the model drops no unsynced data")
			}
			if !tc.wantLoss && lost != 0 {
				t.Fatalf("fsync batch lost %d acknowledged messages", lost)
			}
		})
	}
}
