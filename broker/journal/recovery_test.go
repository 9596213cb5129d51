package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// frameOffsets returns the offsets of the valid frames of a segment.
func frameOffsets(data []byte) []int64 { return frameOffsetsOf(data) }

func readFile(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := readAll(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFileAt(t *testing.T, fs vfs.FS, path string, b []byte, off int64) {
	t.Helper()
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// fill writes n single-message batches and returns the messages.
func fill(t *testing.T, fs vfs.FS, segSize int64, n int) []*store.Message {
	t.Helper()
	msgs, _ := fillThen(t, fs, segSize, n, nil)
	return msgs
}

// crashFill is fill, but returns what a crash after the last write
// leaves (every write was synced): a journal not shut down cleanly.
func crashFill(t *testing.T, segSize int64, n int) (*vfs.MemFS, []*store.Message) {
	t.Helper()
	mem := vfs.NewCrashableMem()
	msgs, crashed := fillThen(t, mem, segSize, n, mem.Crash)
	return crashed, msgs
}

// fillThen writes n single-message batches, calls before (if not nil)
// and closes the journal.
func fillThen(t *testing.T, fs vfs.FS, segSize int64, n int, before func() *vfs.MemFS) ([]*store.Message, *vfs.MemFS) {
	t.Helper()
	s := mustOpen(t, fs, Options{SegmentSize: segSize, syncPrealloc: true})
	var msgs []*store.Message
	for i := 0; i < n; i++ {
		m := testMsg(i)
		addMsgs(t, s, m)
		msgs = append(msgs, m)
	}
	var snap *vfs.MemFS
	if before != nil {
		snap = before()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return msgs, snap
}

func wantCorruption(t *testing.T, err error, file string, off int64, reason string) {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want a *CorruptionError", err)
	}
	if ce.File != file || ce.Offset != off || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("corruption at %s:%d (%s), want %s:%d (%s)", ce.File, ce.Offset, ce.Reason, file, off, reason)
	}
}

func TestCorruptionInSealedSegment(t *testing.T) {
	mem := vfs.NewMem()
	msgs := fill(t, mem, 2<<10, 150)
	segs := segmentFiles(t, mem)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	path := filepath.Join(testDir, segs[1])
	data := readFile(t, mem, path)
	offs := frameOffsets(data)
	bad := offs[2]
	lost := seqsIn(t, mem, segs[1])[1] // frame 0 is the header
	writeFileAt(t, mem, path, []byte{data[bad+12] ^ 0x40}, bad+12)

	_, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10})
	wantCorruption(t, err, path, bad, "checksum mismatch")

	// Repair skips the damaged frame, keeps every valid one after it,
	// says which seqs it lost, and the journal goes on.
	logs := &logBuf{}
	s, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10, Repair: true, Logf: logs.logf})
	if err != nil {
		t.Fatalf("Open with Repair: %v", err)
	}
	if want := fmt.Sprintf("lost 1 messages (seqs %d)", lost); !logs.contains(want) || !logs.contains("kept every valid frame") {
		t.Errorf("repair report does not say %q: %q", want, logs)
	}
	got := recovered(t, s)
	for _, m := range msgs {
		if _, ok := got[m.Seq]; ok == (m.Seq == lost) {
			t.Fatalf("after repair message %d present=%v; lost %d", m.Seq, ok, lost)
		}
	}
	if st := s.Stats(); st["recovery_lost_messages_total"] != 1 {
		t.Errorf("recovery_lost_messages_total %v, want 1", st["recovery_lost_messages_total"])
	}
	m := testMsg(1000)
	addMsgs(t, s, m)
	if m.Seq <= msgs[len(msgs)-1].Seq {
		t.Errorf("seq %d reused after repair (had %d)", m.Seq, msgs[len(msgs)-1].Seq)
	}
	s.Close()
	s = mustOpen(t, mem, Options{SegmentSize: 2 << 10})
	if n := len(recovered(t, s)); n != len(got)+1 {
		t.Errorf("after repair and a write, reopen recovered %d, want %d", n, len(got)+1)
	}
	s.Close()
}

func TestCorruptionInLastSegment(t *testing.T) {
	mem, msgs := crashFill(t, 64<<10, 10)
	path := filepath.Join(testDir, segmentFiles(t, mem)[0])
	data := readFile(t, mem, path)
	offs := frameOffsets(data)
	if len(offs) != 11 {
		t.Fatalf("%d frames", len(offs))
	}
	bad := offs[4]
	writeFileAt(t, mem, path, []byte{data[bad+20] ^ 1}, bad+20)
	_, err := Open(testDir, Options{FS: mem, SegmentSize: 64 << 10})
	wantCorruption(t, err, path, bad, "valid frame at offset")

	logs := &logBuf{}
	s, err := Open(testDir, Options{FS: mem, SegmentSize: 64 << 10, Repair: true, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := recovered(t, s)
	if _, ok := got[msgs[3].Seq]; len(got) != 9 || ok {
		t.Fatalf("repair kept %d messages, want the 9 undamaged ones", len(got))
	}
	if s.Stats()["recovery_repaired_bytes_total"] == 0 {
		t.Error("repaired bytes not counted")
	}
	m := testMsg(99)
	addMsgs(t, s, m)
	if m.Seq <= msgs[len(msgs)-1].Seq {
		t.Errorf("seq %d reused after repair", m.Seq)
	}
}

func TestZeroedFrameBeforeValidOneIsCorruption(t *testing.T) {
	mem, _ := crashFill(t, 64<<10, 5)
	path := filepath.Join(testDir, segmentFiles(t, mem)[0])
	data := readFile(t, mem, path)
	offs := frameOffsets(data)
	writeFileAt(t, mem, path, make([]byte, offs[3]-offs[2]), offs[2])
	_, err := Open(testDir, Options{FS: mem, SegmentSize: 64 << 10})
	wantCorruption(t, err, path, offs[2], "valid frame at offset")
}

func TestTornTailTruncated(t *testing.T) {
	for _, tail := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("\x13\x00\x00\x00garbage that is no frame at all")},
		{"short", []byte{0x40, 0, 0}},
		{"huge length", []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 2}},
	} {
		t.Run(tail.name, func(t *testing.T) {
			mem, msgs := crashFill(t, 64<<10, 5)
			path := filepath.Join(testDir, segmentFiles(t, mem)[0])
			data := readFile(t, mem, path)
			offs := frameOffsets(data)
			last := offs[len(offs)-1]
			_, _, _, end, _ := parseFrame(data, last)
			writeFileAt(t, mem, path, tail.data, end)

			logs := &logBuf{}
			s := mustOpen(t, mem, Options{SegmentSize: 64 << 10, Logf: logs.logf})
			got := recovered(t, s)
			if len(got) != len(msgs) {
				t.Fatalf("recovered %d, want %d", len(got), len(msgs))
			}
			if !logs.contains("torn tail at offset") {
				t.Errorf("torn tail not reported: %q", logs)
			}
			addMsgs(t, s, testMsg(6))
			s.Close()
			s = mustOpen(t, mem, Options{SegmentSize: 64 << 10})
			defer s.Close()
			if n := len(recovered(t, s)); n != len(msgs)+1 {
				t.Fatalf("recovered %d after writing over the torn tail", n)
			}
		})
	}
}

// TestCleanShutdownLeavesNoTornTail damages the end of the log of a
// journal that was closed cleanly: what a crash could explain as a torn
// tail is corruption there, reported with file and offset.
func TestCleanShutdownLeavesNoTornTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(data []byte, last, end int64) (b []byte, at, reportAt int64)
		reason string
	}{
		{"flipped byte in the last frame", func(data []byte, last, end int64) ([]byte, int64, int64) {
			return []byte{data[last+12] ^ 0x08}, last + 12, last
		}, "checksum mismatch"},
		{"last frame zeroed", func(data []byte, last, end int64) ([]byte, int64, int64) {
			return make([]byte, end-last), last, last
		}, "clean shutdown recorded its end"},
		{"garbage after the end", func(data []byte, last, end int64) ([]byte, int64, int64) {
			return []byte("garbage"), end, end
		}, "after a clean shutdown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			msgs := fill(t, mem, 64<<10, 5)
			path := filepath.Join(testDir, segmentFiles(t, mem)[0])
			data := readFile(t, mem, path)
			offs := frameOffsets(data)
			last := offs[len(offs)-1]
			_, _, _, end, _ := parseFrame(data, last)
			b, at, reportAt := tc.damage(data, last, end)
			writeFileAt(t, mem, path, b, at)
			_, err := Open(testDir, Options{FS: mem, SegmentSize: 64 << 10})
			wantCorruption(t, err, path, reportAt, tc.reason)

			// Repair goes on without the damaged frame.
			s := mustOpen(t, mem, Options{SegmentSize: 64 << 10, Repair: true})
			if n := len(recovered(t, s)); n < len(msgs)-1 {
				t.Fatalf("repair kept %d of %d", n, len(msgs))
			}
			s.Close()
		})
	}
}

func TestTornTailInSealedSegmentIsCorruption(t *testing.T) {
	mem := vfs.NewMem()
	fill(t, mem, 2<<10, 100)
	segs := segmentFiles(t, mem)
	path := filepath.Join(testDir, segs[0])
	data := readFile(t, mem, path)
	offs := frameOffsets(data)
	_, _, _, end, _ := parseFrame(data, offs[len(offs)-1])
	writeFileAt(t, mem, path, []byte("junk"), end)
	_, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10})
	wantCorruption(t, err, path, end, "sealed segment")
}

func TestBadSegmentHeader(t *testing.T) {
	mem := vfs.NewMem()
	msgs := fill(t, mem, 2<<10, 100)
	segs := segmentFiles(t, mem)
	path := filepath.Join(testDir, segs[1])
	writeFileAt(t, mem, path, appendSegmentHeader(nil, 77, 1), 0)
	_, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10})
	wantCorruption(t, err, path, 0, "names segment 77")
	// Repair writes a header of its own and keeps the segment's frames.
	s, err := Open(testDir, Options{FS: mem, SegmentSize: 2 << 10, Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(recovered(t, s)); n != len(msgs) {
		t.Fatalf("%d of %d messages after repair", n, len(msgs))
	}
	s.Close()
	s = mustOpen(t, mem, Options{SegmentSize: 2 << 10})
	defer s.Close()
	if n := len(recovered(t, s)); n != len(msgs) {
		t.Fatalf("%d of %d messages after reopening the repaired journal", n, len(msgs))
	}
}

func TestReclaim(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, mem, Options{SegmentSize: 2 << 10, syncPrealloc: true})
	defer s.Close()
	var msgs []*store.Message
	for i := 0; len(segmentFiles(t, mem)) < 6; i++ {
		m := testMsg(i)
		addMsgs(t, s, m)
		msgs = append(msgs, m)
	}
	before := s.Stats()["segments"]
	// Ack everything but the first message (compaction moves it forward,
	// compact_test.go), then that one too.
	for _, m := range msgs[1:] {
		if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(bg, &store.Batch{Acks: []uint64{msgs[0].Seq}}); err != nil {
		t.Fatal(err)
	}
	// The writer goroutine answers first and reclaims after, so reclamation
	// may still be under way when Write returns: wait for it.
	st := s.Stats()
	// segments_reclaimed_total counts a segment once its file is removed.
	done := func() bool { return st["segments"] == 1 && st["segments_reclaimed_total"] >= before-1 }
	for deadline := time.Now().Add(10 * time.Second); !done() && time.Now().Before(deadline); st = s.Stats() {
		time.Sleep(time.Millisecond)
	}
	if st["segments"] != 1 || st["segments_reclaimed_total"] < before-1 || st["live_messages"] != 0 {
		t.Fatalf("after acking everything: %v", st)
	}
	if n := len(segmentFiles(t, mem)); n != 2 { // active and preallocated
		t.Fatalf("%d segment files left", n)
	}
	// Seqs keep increasing though every segment that held them is gone.
	s.Close()
	s = mustOpen(t, mem, Options{SegmentSize: 2 << 10})
	m := testMsg(0)
	addMsgs(t, s, m)
	if m.Seq <= msgs[len(msgs)-1].Seq {
		t.Fatalf("seq %d reused", m.Seq)
	}
}

func TestRecoverBodyBudget(t *testing.T) {
	mem := vfs.NewMem()
	msgs := fill(t, mem, 8<<10, 20)
	s := mustOpen(t, mem, Options{SegmentSize: 8 << 10, RecoverBodyBudget: 100})
	defer s.Close()
	var withBody, without int
	err := s.Recover(bg, func(m *store.Message) error {
		if m.Body == nil {
			without++
			if m.Size == 0 {
				t.Errorf("message %d without body has Size 0", m.Seq)
			}
		} else {
			withBody++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if withBody == 0 || without == 0 || withBody+without != len(msgs) {
		t.Fatalf("%d with body, %d without", withBody, without)
	}
}

func TestLockExcludesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{SegmentSize: 64 << 10}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	} else {
		t.Log(err)
	}
	done := make(chan error, 1)
	go func() {
		s2, err := Open(dir, Options{SegmentSize: 64 << 10, LockTimeout: 10e9})
		if err == nil {
			s2.Close()
		}
		done <- err
	}()
	s.Close()
	if err := <-done; err != nil {
		t.Fatalf("waiting Open = %v", err)
	}
}

func TestWriteContextAndValidation(t *testing.T) {
	s := mustOpen(t, vfs.NewMem(), Options{SegmentSize: 4 << 10})
	defer s.Close()
	ctx, cancel := contextWithCancel()
	cancel()
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{testMsg(0)}}); err == nil {
		t.Fatal("Write with a cancelled context succeeded")
	}
	m := testMsg(1)
	addMsgs(t, s, m)
	if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq, m.Seq}}); err == nil || errors.Is(err, store.ErrFailed) {
		t.Fatalf("double ack in one batch = %v, want a plain error", err)
	}
	if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
		t.Fatalf("store unusable after a rejected batch: %v", err)
	}
}

func TestParseSyncPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"batch", "batch", true}, {"", "batch", true}, {"always", "always", true},
		{"never", "never", true}, {"interval=10ms", "interval=10ms", true},
		{"interval=1s", "interval=1s", true}, {"interval=0s", "", false},
		{"interval=-1s", "", false}, {"interval=", "", false}, {"sometimes", "", false},
	} {
		p, err := ParseSyncPolicy(tc.in)
		if (err == nil) != tc.ok || tc.ok && p.String() != tc.want {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v", tc.in, p, err)
		}
	}
}

func TestIntervalSyncsWithinInterval(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, Options{SegmentSize: 4 << 10, Sync: SyncPolicy{Mode: SyncInterval, Interval: 5 * time.Millisecond}})
	defer s.Close()
	m := testMsg(1)
	addMsgs(t, s, m)
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats()["fsyncs_total"] == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	r := mustOpen(t, mem.Crash(), Options{SegmentSize: 4 << 10})
	defer r.Close()
	if _, ok := recovered(t, r)[m.Seq]; !ok {
		t.Fatal("message written under interval=5ms lost in a crash well after the interval")
	}
}

func TestNeverSyncsAtClose(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, Options{SegmentSize: 4 << 10, Sync: SyncPolicy{Mode: SyncNever}})
	m := testMsg(1)
	addMsgs(t, s, m)
	before := s.Stats()["fsyncs_total"]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, mem.Crash(), Options{SegmentSize: 4 << 10})
	defer r.Close()
	if _, ok := recovered(t, r)[m.Seq]; !ok {
		t.Fatalf("message lost after a clean Close under never (%v syncs before Close)", before)
	}
}

func TestAlwaysSyncsEachWrite(t *testing.T) {
	s := mustOpen(t, vfs.NewMem(), Options{SegmentSize: 64 << 10, Sync: SyncPolicy{Mode: SyncAlways}, syncPrealloc: true})
	defer s.Close()
	before := s.Stats()["fsyncs_total"]
	for i := 0; i < 10; i++ {
		addMsgs(t, s, testMsg(i))
	}
	if got := s.Stats()["fsyncs_total"] - before; got != 10 {
		t.Fatalf("%v syncs for 10 writes under always", got)
	}
}

// TestLoadDuringWritesAndReclaim reads bodies back while writers add and
// acknowledge and segments are reclaimed under them.
func TestLoadDuringWritesAndReclaim(t *testing.T) {
	s := mustOpen(t, vfs.NewMem(), Options{SegmentSize: 2 << 10})
	defer s.Close()
	var wg sync.WaitGroup
	live := make(chan *store.Message, 64)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				m := testMsg(w*1000 + i)
				if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
					t.Error(err)
					return
				}
				live <- m
			}
		}(w)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range live {
			body, err := s.Load(bg, m.Seq)
			if err != nil || string(body) != string(m.Body) {
				t.Errorf("Load(%d) = %q, %v", m.Seq, body, err)
			}
			if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
				t.Error(err)
			}
			if _, err := s.Load(bg, m.Seq); err == nil {
				t.Errorf("Load(%d) after its ack succeeded", m.Seq)
			}
		}
	}()
	wg.Wait()
	close(live)
	<-done
	if st := s.Stats(); st["live_messages"] != 0 || st["segments_reclaimed_total"] == 0 {
		t.Errorf("stats after acking everything: %v", st)
	}
}

// TestReopenedJournalMayBeTorn: a clean shutdown counts only until the
// journal is opened again; a crash after that may leave a torn tail.
func TestReopenedJournalMayBeTorn(t *testing.T) {
	mem := vfs.NewCrashableMem()
	msgs := fill(t, mem, 64<<10, 5)
	s := mustOpen(t, mem, Options{SegmentSize: 64 << 10})
	m := testMsg(5)
	addMsgs(t, s, m)
	crashed := mem.Crash()
	s.Close()
	path := filepath.Join(testDir, segmentFiles(t, crashed)[0])
	data := readFile(t, crashed, path)
	offs := frameOffsets(data)
	_, _, _, end, _ := parseFrame(data, offs[len(offs)-1])
	writeFileAt(t, crashed, path, []byte("torn"), end)
	logs := &logBuf{}
	r := mustOpen(t, crashed, Options{SegmentSize: 64 << 10, Logf: logs.logf})
	defer r.Close()
	if n := len(recovered(t, r)); n != len(msgs)+1 {
		t.Fatalf("recovered %d, want %d", n, len(msgs)+1)
	}
	if !logs.contains("torn tail") {
		t.Fatalf("torn tail not reported: %s", logs)
	}
}
