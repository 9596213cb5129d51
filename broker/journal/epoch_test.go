package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// bodies returns the bodies s recovers.
func bodies(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, m := range recovered(t, s) {
		got[string(m.Body)] = true
	}
	return got
}

func msg(body string) *store.Message { return &store.Message{Queue: "/queue/e", Body: []byte(body)} }

// TestEpochTakeover: a journal written without epochs (as today) opens
// fenced; every takeover starts a new segment recording its epoch; an open
// with an older epoch than one on disk is refused.
func TestEpochTakeover(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, mem, Options{SegmentSize: 4 << 10})
	addMsgs(t, s, msg("a"))
	s.Close()
	for epoch := int64(1); epoch <= 2; epoch++ {
		s = mustOpen(t, mem, Options{Epoch: epoch, SegmentSize: 4 << 10})
		if got := len(s.segs); got != int(epoch)+1 {
			t.Fatalf("epoch %d: %d segments, want %d (a new one per takeover)", epoch, got, epoch+1)
		}
		if s.active.ep.epoch != epoch {
			t.Fatalf("active segment's epoch %d, want %d", s.active.ep.epoch, epoch)
		}
		addMsgs(t, s, msg(string(rune('a'+epoch))))
		s.Close()
	}
	s = mustOpen(t, mem, Options{Epoch: 3, SegmentSize: 4 << 10})
	if got := bodies(t, s); len(got) != 3 || !got["a"] || !got["b"] || !got["c"] {
		t.Fatalf("recovered %v, want a, b, c", got)
	}
	if sb := s.SplitBrain(); len(sb) != 0 {
		t.Fatalf("split brain reported without one: %v", sb)
	}
	s.Close()
	_, err := Open(testDir, Options{FS: mem, Epoch: 2, SegmentSize: 4 << 10})
	if !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("open with epoch 2 after epoch 3 wrote: %v, want ErrStaleEpoch", err)
	}
}

// zombieWrite appends a batch of body at off in the segment file path, as
// an ex-master that woke up after the takeover would.
func zombieWrite(t *testing.T, mem vfs.FS, path string, off int64, seq uint64, body string) {
	t.Helper()
	frame, _ := appendBatch(nil, &store.Batch{Adds: []*store.Message{msg(body)}}, seq, nil)
	f, err := mem.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(frame, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestEpochSplitBrainEvidence: frames an ex-master of epoch 1 appended to
// its segment after epoch 2 took over are reported as split-brain evidence
// and not replayed; what both epochs acknowledged is recovered.
func TestEpochSplitBrainEvidence(t *testing.T) {
	mem := vfs.NewMem()
	s1 := mustOpen(t, mem, Options{Epoch: 1, SegmentSize: 4 << 10})
	addMsgs(t, s1, msg("acked by 1"))
	seg1, end1, next1 := s1.active.path, s1.off, s1.nextSeq
	s1.Close()
	s2 := mustOpen(t, mem, Options{Epoch: 2, SegmentSize: 4 << 10})
	addMsgs(t, s2, msg("acked by 2"))
	s2.Close()
	zombieWrite(t, mem, seg1, end1, next1, "written by 1 after the takeover")

	var log logBuf
	s3 := mustOpen(t, mem, Options{Epoch: 3, SegmentSize: 4 << 10, Logf: log.logf})
	defer s3.Close()
	got := bodies(t, s3)
	if got["written by 1 after the takeover"] {
		t.Fatal("the ex-master's frame written after the takeover was replayed")
	}
	if len(got) != 2 || !got["acked by 1"] || !got["acked by 2"] {
		t.Fatalf("recovered %v, want both acknowledged messages", got)
	}
	sb := s3.SplitBrain()
	if len(sb) != 1 || sb[0].Frames != 1 || sb[0].Epoch != 1 || sb[0].Newer != 2 || sb[0].From != end1 || sb[0].File != seg1 {
		t.Fatalf("split brain evidence %+v, want one frame of epoch 1 at %s offset %d after epoch 2", sb, seg1, end1)
	}
	if !log.contains("SPLIT-BRAIN EVIDENCE") {
		t.Fatalf("not reported in the log:\n%s", log.String())
	}
	if n := s3.Stats()["split_brain_frames"]; n != 1 {
		t.Fatalf("split_brain_frames %v, want 1", n)
	}
}

// TestEpochSplitBrainNewSegment: a segment an ex-master of epoch 1 started
// (rolled into) after epoch 2 took over holds nothing to replay.
func TestEpochSplitBrainNewSegment(t *testing.T) {
	mem := vfs.NewMem()
	s1 := mustOpen(t, mem, Options{Epoch: 1, SegmentSize: 4 << 10})
	addMsgs(t, s1, msg("acked by 1"))
	seg1, end1, next1 := s1.active, s1.off, s1.nextSeq
	s1.Close()
	s2 := mustOpen(t, mem, Options{Epoch: 2, SegmentSize: 4 << 10})
	addMsgs(t, s2, msg("acked by 2"))
	zid := s2.active.id + 1
	s2.Close()
	// The ex-master's roll: a segment of its epoch after epoch 2's.
	path := filepath.Join(testDir, segmentName(zid))
	f, err := mem.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	hdr := appendEpoch(appendSegmentHeader(nil, zid, next1), segEpoch{epoch: 1, prevID: seg1.id, prevEnd: end1})
	f.WriteAt(hdr, 0)
	f.Close()
	zombieWrite(t, mem, path, int64(len(hdr)), next1, "rolled by 1 after the takeover")

	var log logBuf
	s3 := mustOpen(t, mem, Options{Epoch: 3, SegmentSize: 4 << 10, Logf: log.logf})
	defer s3.Close()
	got := bodies(t, s3)
	if got["rolled by 1 after the takeover"] || len(got) != 2 {
		t.Fatalf("recovered %v, want only the two acknowledged messages", got)
	}
	if sb := s3.SplitBrain(); len(sb) != 1 || sb[0].File != path || sb[0].Frames != 1 || sb[0].Newer != 2 {
		t.Fatalf("split brain evidence %+v, want the ex-master's segment %s", sb, path)
	}
	if s3.active.id <= zid || s3.active.ep.epoch != 3 {
		t.Fatalf("epoch 3 writes to segment %d (epoch %d), want a new one after the evidence", s3.active.id, s3.active.ep.epoch)
	}
}

// FuzzEpochRecover: a fenced open of any one-segment journal (epoch
// records included) replays it, or fails with a *CorruptionError or
// ErrStaleEpoch, never panics; once open, it takes over in a new segment
// and reopens with what it wrote.
func FuzzEpochRecover(f *testing.F) {
	seg := appendEpoch(appendSegmentHeader(nil, 1, 1), segEpoch{epoch: 3, prevID: 0, prevEnd: 0})
	seg, _ = appendBatch(seg, &store.Batch{Adds: []*store.Message{msg("x")}}, 1, nil)
	f.Add(seg)
	f.Add(appendEpoch(appendSegmentHeader(nil, 1, 1), segEpoch{epoch: 1 << 50}))
	for _, seed := range sampleSegments(f) {
		f.Add(seed)
	}
	const ours = 1 << 40
	f.Fuzz(func(t *testing.T, data []byte) {
		mem, _ := oneSegment(t, data)
		opts := Options{FS: mem, SegmentSize: fuzzSegSize, syncPrealloc: true, Epoch: ours}
		s, err := Open(testDir, opts)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) && !errors.Is(err, ErrStaleEpoch) {
				t.Fatalf("Open: %v is neither a *CorruptionError nor ErrStaleEpoch", err)
			}
			return
		}
		if s.active.ep.epoch != ours {
			t.Fatalf("writing in a segment of epoch %d, want %d", s.active.ep.epoch, ours)
		}
		m := msg("after")
		if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
			t.Fatalf("Write after recovery: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(testDir, opts); err != nil {
			t.Fatalf("reopen by the same epoch: %v", err)
		}
		defer s.Close()
		if got := recovered(t, s); got[m.Seq] == nil {
			t.Fatalf("the message written after recovery (seq %d) is gone", m.Seq)
		}
	})
}
