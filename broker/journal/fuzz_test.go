package journal

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

var genCorpus = flag.Bool("gen-corpus", false, "rewrite testdata/fuzz/FuzzRecover from journals this test writes")

const fuzzSegSize = 4 << 10

// FuzzRecover opens a journal whose only segment holds arbitrary bytes. It
// must never panic: Open either recovers or fails with a *CorruptionError;
// with Repair it recovers; what it recovered can be written to and
// reopened cleanly.
func FuzzRecover(f *testing.F) {
	for _, seed := range sampleSegments(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mem, path := oneSegment(t, data)
		opts := Options{FS: mem, SegmentSize: fuzzSegSize, syncPrealloc: true}
		s, err := Open(testDir, opts)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("Open: %v is not a *CorruptionError", err)
			}
			if ce.File != path || ce.Offset < 0 || ce.Offset > int64(len(data)) {
				t.Fatalf("corruption at %s:%d, outside %s (%d bytes)", ce.File, ce.Offset, path, len(data))
			}
			opts.Repair = true
			if s, err = Open(testDir, opts); err != nil {
				t.Fatalf("Open with Repair: %v", err)
			}
			opts.Repair = false
		}
		got := recovered(t, s)
		var maxSeq uint64
		for seq := range got {
			maxSeq = max(maxSeq, seq)
		}
		m := &store.Message{Queue: "/queue/after", Body: []byte("after")}
		if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
			t.Fatalf("Write after recovery: %v", err)
		}
		if m.Seq <= maxSeq {
			t.Fatalf("new seq %d not above recovered %d", m.Seq, maxSeq)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(testDir, opts)
		if err != nil {
			t.Fatalf("reopen after recovery and a write: %v", err)
		}
		defer s.Close()
		if again := recovered(t, s); len(again) != len(got)+1 {
			t.Fatalf("reopen recovered %d, want %d", len(again), len(got)+1)
		}
	})
}

// sampleSegments returns segment files a journal wrote, with torn and
// corrupted variants, trailing zeros trimmed.
func sampleSegments(tb testing.TB) [][]byte {
	mem := vfs.NewMem()
	s := mustOpen(tb, mem, Options{SegmentSize: fuzzSegSize, syncPrealloc: true})
	var seqs []uint64
	for i := 0; i < 12; i++ {
		m := testMsg(i)
		m.Headers = append(m.Headers, store.Header{Key: "k\x00", Value: "v\n"})
		if i == 5 {
			m.Body = nil
		}
		b := &store.Batch{Adds: []*store.Message{m}}
		if i%3 == 2 {
			b.Acks = seqs[:1]
			seqs = seqs[1:]
		}
		if err := s.Write(bg, b); err != nil {
			tb.Fatal(err)
		}
		seqs = append(seqs, m.Seq)
	}
	s.Close()
	data := readFileTB(tb, mem, filepath.Join(testDir, segmentName(1)))
	data = data[:lastNonZero(data)]
	offs := frameOffsetsOf(data)
	mid := offs[len(offs)/2]
	flip := func(off int64) []byte {
		c := append([]byte(nil), data...)
		c[off] ^= 0x10
		return c
	}
	zeroHole := append([]byte(nil), data...)
	clear(zeroHole[offs[2]:offs[3]])
	twoBad := flip(mid + 10)
	twoBad[offs[2]+12] ^= 0x01
	// A move record (compaction) of the first two messages after them.
	moved := append([]byte(nil), data...)
	moved = append(moved, make([]byte, align(int64(len(moved)))-int64(len(moved)))...)
	first := testMsg(0)
	first.Seq = 1
	second := testMsg(1)
	second.Seq = 2
	moved, _ = appendRecord(moved, recMove, &store.Batch{Adds: []*store.Message{first, second}}, 0, nil)
	return [][]byte{
		data,               // a clean segment
		data[:offs[1]],     // header only
		data[:len(data)-5], // torn last frame
		data[:mid+3],       // torn frame header
		append(append([]byte(nil), data...), "garbage tail"...),
		flip(mid + 10),              // checksum mismatch in the middle
		flip(int64(len(data)) - 2),  // checksum mismatch in the last frame
		flip(4),                     // bad segment header
		zeroHole,                    // a zeroed frame before valid ones
		{},                          // empty file
		make([]byte, 64),            // zeros
		twoBad,                      // two damaged frames among valid ones
		repairedSegment(tb, twoBad), // the same after repair: skip frames
		moved,                       // a move record
	}
}

// repairedSegment returns seg as Open with Repair leaves it.
func repairedSegment(tb testing.TB, seg []byte) []byte {
	mem, path := oneSegment(tb, seg)
	s, err := Open(testDir, Options{FS: mem, SegmentSize: fuzzSegSize, Repair: true, syncPrealloc: true})
	if err != nil {
		tb.Fatal(err)
	}
	s.Close()
	data := readFileTB(tb, mem, path)
	return data[:lastNonZero(data)]
}

func frameOffsetsOf(data []byte) []int64 {
	var offs []int64
	for off := int64(0); ; {
		st, _, _, next, _ := parseFrame(data, off)
		if st != frameOK {
			return offs
		}
		offs = append(offs, off)
		off = next
	}
}

func readFileTB(tb testing.TB, fs vfs.FS, path string) []byte {
	f, err := fs.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	data, err := readAll(f, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestGenerateFuzzCorpus writes the seed corpus with -gen-corpus.
func TestGenerateFuzzCorpus(t *testing.T) {
	if !*genCorpus {
		t.Skip("run with -gen-corpus to rewrite testdata/fuzz/FuzzRecover")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"clean", "header-only", "torn-frame", "torn-frame-header", "garbage-tail",
		"crc-middle", "crc-last", "bad-header", "zero-hole", "empty", "zeros", "two-bad", "repaired", "moved"}
	for i, data := range sampleSegments(t) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, names[i]), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// oneSegment returns a filesystem whose journal directory holds segment 1
// with data in it, and nothing else.
func oneSegment(tb testing.TB, data []byte) (*vfs.MemFS, string) {
	mem := vfs.NewMem()
	if err := mem.MkdirAll(testDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(testDir, segmentName(1))
	f, err := mem.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	f.Write(data)
	f.Close()
	return mem, path
}
