package journal

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// seqsIn returns the seqs of the adds in a segment file.
func seqsIn(t *testing.T, fs vfs.FS, name string) []uint64 {
	t.Helper()
	data := readFile(t, fs, filepath.Join(testDir, name))
	var seqs []uint64
	for _, off := range frameOffsets(data) {
		_, typ, p, _, _ := parseFrame(data, off)
		if typ == recBatch {
			_ = decodeBatch(p, nil, func(a *addRec) error { seqs = append(seqs, a.seq); return nil })
		}
	}
	return seqs
}

func wantMissing(t *testing.T, err error, names ...string) {
	t.Helper()
	var me *MissingSegmentsError
	if !errors.As(err, &me) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want a *MissingSegmentsError", err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Fatalf("error %q does not name %s", err, n)
		}
	}
}

// TestMissingSegment deletes one segment of a stopped journal: Open
// refuses and names it; Repair goes on without it, says which messages it
// lost, and leaves a journal that opens cleanly.
func TestMissingSegment(t *testing.T) {
	for _, tc := range []struct {
		name string
		pick func(data []string) []string // the segments to delete
	}{
		{"middle", func(d []string) []string { return d[2:3] }},
		{"oldest", func(d []string) []string { return d[:1] }},
		{"newest data", func(d []string) []string { return d[len(d)-1:] }},
		{"newest data and preallocated", func(d []string) []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			msgs := fill(t, mem, 2<<10, 150)
			files := segmentFiles(t, mem)
			// The last file is the preallocated next segment: all zero.
			data := files[:len(files)-1]
			if len(data) < 5 {
				t.Fatalf("only %d segments", len(data))
			}
			victims := tc.pick(data)
			if victims == nil {
				victims = files[len(files)-2:]
			}
			lost := map[uint64]bool{}
			for _, v := range victims {
				for _, seq := range seqsIn(t, mem, v) {
					lost[seq] = true
				}
				if err := mem.Remove(filepath.Join(testDir, v)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10})
			wantMissing(t, err, victims[0])

			logs := &logBuf{}
			s := mustOpen(t, mem, Options{SegmentSize: 2 << 10, Repair: true, Logf: logs.logf})
			if !logs.contains("missing") {
				t.Errorf("repair did not report the missing segment: %q", logs)
			}
			got := recovered(t, s)
			for _, m := range msgs {
				if _, ok := got[m.Seq]; ok == lost[m.Seq] {
					t.Fatalf("message %d recovered=%v, lost with the segment=%v", m.Seq, ok, lost[m.Seq])
				}
			}
			m := testMsg(999)
			addMsgs(t, s, m)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, mem, Options{SegmentSize: 2 << 10})
			defer s.Close()
			if _, ok := recovered(t, s)[m.Seq]; !ok {
				t.Fatal("message written after the repair lost")
			}
		})
	}
}

// TestMissingSegmentReportsSeqs checks that repair names the seqs a
// missing middle segment held.
func TestMissingSegmentReportsSeqs(t *testing.T) {
	mem := vfs.NewMem()
	fill(t, mem, 2<<10, 100)
	victim := segmentFiles(t, mem)[1]
	seqs := seqsIn(t, mem, victim)
	if err := mem.Remove(filepath.Join(testDir, victim)); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	s := mustOpen(t, mem, Options{SegmentSize: 2 << 10, Repair: true, Logf: logs.logf})
	defer s.Close()
	want := fmtSeqs(seqs[0], seqs[len(seqs)-1])
	if !logs.contains(want) {
		t.Fatalf("repair log does not say %q:\n%s", want, logs)
	}
}

func fmtSeqs(first, last uint64) string { return fmt.Sprintf("seqs %d to %d", first, last) }

// TestJournalWithoutManifestOpens: a journal written before the manifest
// existed opens, and gets one.
func TestJournalWithoutManifestOpens(t *testing.T) {
	mem := vfs.NewMem()
	msgs := fill(t, mem, 2<<10, 60)
	if err := mem.Remove(filepath.Join(testDir, manifestName)); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, mem, Options{SegmentSize: 2 << 10})
	if n := len(recovered(t, s)); n != len(msgs) {
		t.Fatalf("recovered %d of %d", n, len(msgs))
	}
	s.Close()
	if _, err := mem.Stat(filepath.Join(testDir, manifestName)); err != nil {
		t.Fatalf("no manifest after opening: %v", err)
	}
	// From now on a missing segment is noticed.
	if err := mem.Remove(filepath.Join(testDir, segmentFiles(t, mem)[0])); err != nil {
		t.Fatal(err)
	}
	_, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10})
	wantMissing(t, err)
}

// TestReclaimKeepsManifest: segments reclaimed are no longer expected.
func TestReclaimKeepsManifest(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, mem, Options{SegmentSize: 2 << 10, syncPrealloc: true, Sync: SyncPolicy{Mode: SyncAlways}})
	for i := 0; i < 100; i++ {
		m := testMsg(i)
		addMsgs(t, s, m)
		if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats()["segments_reclaimed_total"] == 0 {
		t.Fatal("nothing reclaimed")
	}
	s.Close()
	s = mustOpen(t, mem.Crash(), Options{SegmentSize: 2 << 10})
	s.Close()
}
