package journal

import (
	"math/rand/v2"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// pinnedLoad writes n messages, one at a time, keeping every pin-th
// unacknowledged and acking each other one right away (a consumer that
// keeps up, but for a few messages it holds for good). It returns the
// pinned messages.
func pinnedLoad(t *testing.T, s *Store, n, pin int, each func(i int)) []*store.Message {
	t.Helper()
	var pinned []*store.Message
	for i := 0; i < n; i++ {
		m := testMsg(i)
		m.Body = append(m.Body, make([]byte, 100)...)
		addMsgs(t, s, m)
		if i%pin == 0 {
			pinned = append(pinned, m)
		} else if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
			t.Fatal(err)
		}
		if each != nil {
			each(i)
		}
	}
	return pinned
}

// TestCompactionBoundsDisk: a few unacknowledged messages no longer keep
// every later segment: disk use stays near the live data however much
// went through, the moved messages come back in seq order after a
// restart, and can be acknowledged then.
func TestCompactionBoundsDisk(t *testing.T) {
	mem := vfs.NewMem()
	const segSize = 4 << 10
	s := mustOpen(t, mem, Options{SegmentSize: segSize, syncPrealloc: true})
	var maxDisk, maxSegs float64
	pinned := pinnedLoad(t, s, 3000, 500, func(int) {
		st := s.Stats()
		maxDisk, maxSegs = max(maxDisk, st["journal_disk_bytes"]), max(maxSegs, st["segments"])
	})
	st := s.Stats()
	written := st["bytes_written_total"]
	t.Logf("wrote %.0f bytes; disk at most %.0f bytes in %.0f segments; %.0f messages moved from %.0f segments; live ratio %.3f",
		written, maxDisk, maxSegs, st["compacted_messages_total"], st["compacted_segments_total"], st["journal_live_ratio"])
	if st["compacted_messages_total"] == 0 {
		t.Fatal("nothing compacted")
	}
	if maxDisk > 8*segSize || written < 20*maxDisk {
		t.Fatalf("disk use reached %.0f bytes for %d live messages (%.0f written)", maxDisk, len(pinned), written)
	}
	if st["journal_live_ratio"] <= 0 || st["journal_live_ratio"] > 1 {
		t.Fatalf("live ratio %v", st["journal_live_ratio"])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, mem, Options{SegmentSize: segSize})
	got := recovered(t, s) // fails on seqs out of order
	if len(got) != len(pinned) {
		t.Fatalf("recovered %d messages, want the %d pinned", len(got), len(pinned))
	}
	for _, m := range pinned {
		if g, ok := got[m.Seq]; !ok || !sameMsg(g, m) {
			t.Fatalf("pinned message %d: got %+v", m.Seq, g)
		}
		if b, err := s.Load(bg, m.Seq); err != nil || string(b) != string(m.Body) {
			t.Fatalf("Load(%d) = %q, %v", m.Seq, b, err)
		}
	}
	// Acknowledging moved messages after the restart works, and lasts.
	for _, m := range pinned[:2] {
		if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
			t.Fatalf("ack of moved message %d: %v", m.Seq, err)
		}
	}
	s.Close()
	s = mustOpen(t, mem, Options{SegmentSize: segSize})
	defer s.Close()
	if n := len(recovered(t, s)); n != len(pinned)-2 {
		t.Fatalf("recovered %d after acking 2 of %d", n, len(pinned))
	}
}

// TestCompactionCrash crashes a journal at random moments while it
// compacts: every pinned message written before the crash comes back
// whole, and no message whose ack was written before it comes back.
func TestCompactionCrash(t *testing.T) {
	compacted := 0.0
	for seed := uint64(1); seed <= uint64(crashIterations()); seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		mem := vfs.NewCrashableMem()
		const segSize = 2 << 10
		policy := []SyncPolicy{{Mode: SyncBatch}, {Mode: SyncAlways}}[seed%2]
		opts := Options{SegmentSize: segSize, Sync: policy}
		s := mustOpen(t, mem, opts)
		crashAt, pin := 50+rng.IntN(600), 1+rng.IntN(40)
		var snap *vfs.MemFS
		var pinned []*store.Message
		var acked []uint64
		for i := 0; i < 700; i++ {
			m := testMsg(i)
			m.Body = append(m.Body, make([]byte, rng.IntN(200))...)
			addMsgs(t, s, m)
			if i%pin == 0 {
				pinned = append(pinned, m)
			} else {
				if err := s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}}); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, m.Seq)
			}
			if i == crashAt {
				if rng.IntN(2) == 0 {
					snap = mem.CrashTorn(seed)
				} else {
					snap = mem.Crash()
				}
				break
			}
		}
		compacted += s.Stats()["compacted_messages_total"]
		s.Close()
		r, err := Open(testDir, Options{FS: snap, SegmentSize: segSize})
		if err != nil {
			t.Fatalf("seed %d: reopen after crash: %v", seed, err)
		}
		got := recovered(t, r)
		for _, m := range pinned {
			if g, ok := got[m.Seq]; !ok || !sameMsg(g, m) {
				t.Fatalf("seed %d: pinned message %d lost or damaged after a crash: %+v", seed, m.Seq, g)
			}
		}
		for _, seq := range acked {
			if _, ok := got[seq]; ok {
				t.Fatalf("seed %d: message %d came back though its ack was acknowledged", seed, seq)
			}
		}
		r.Close()
	}
	if compacted == 0 {
		t.Fatal("the crash test never compacted")
	}
	t.Logf("%.0f messages moved over the runs", compacted)
}

// TestCompactionLeavesLiveSegments: segments whose messages are live are
// not rewritten, however small the bodies against headers and framing.
func TestCompactionLeavesLiveSegments(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, mem, Options{SegmentSize: 2 << 10, syncPrealloc: true})
	defer s.Close()
	for i := 0; i < 300; i++ {
		addMsgs(t, s, testMsg(i))
	}
	if st := s.Stats(); st["compacted_messages_total"] != 0 || st["segments"] < 10 {
		t.Fatalf("with every message live: %v messages moved, %v segments", st["compacted_messages_total"], st["segments"])
	}
}

// TestCompactionUnpinsBehindLiveSegment: a fully live oldest segment (a
// queue nobody consumes) does not keep the dead segments behind it.
func TestCompactionUnpinsBehindLiveSegment(t *testing.T) {
	mem := vfs.NewMem()
	const segSize = 4 << 10
	s := mustOpen(t, mem, Options{SegmentSize: segSize, syncPrealloc: true})
	defer s.Close()
	var kept []*store.Message
	for s.Stats()["segments"] < 2 { // one full segment of live messages
		m := testMsg(len(kept))
		addMsgs(t, s, m)
		kept = append(kept, m)
	}
	var maxDisk float64
	pinnedLoad(t, s, 2000, 1<<30, func(int) { maxDisk = max(maxDisk, s.Stats()["journal_disk_bytes"]) })
	if maxDisk > 8*segSize {
		t.Fatalf("disk reached %.0f bytes behind a live segment of %d messages", maxDisk, len(kept))
	}
	got := recovered(t, s)
	for _, m := range kept {
		if g, ok := got[m.Seq]; !ok || !sameMsg(g, m) {
			t.Fatalf("live message %d lost", m.Seq)
		}
	}
}

// TestCompactionSparesLaggingConsumer: a consumer that acks in order a
// segment behind the producer has nothing moved under it.
func TestCompactionSparesLaggingConsumer(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, mem, Options{SegmentSize: 4 << 10, syncPrealloc: true})
	defer s.Close()
	var window []uint64
	for i := 0; i < 3000; i++ {
		m := testMsg(i)
		addMsgs(t, s, m)
		window = append(window, m.Seq)
		if len(window) > 60 { // about one segment behind
			if err := s.Write(bg, &store.Batch{Acks: window[:1]}); err != nil {
				t.Fatal(err)
			}
			window = window[1:]
		}
	}
	if st := s.Stats(); st["compacted_messages_total"] != 0 || st["segments_reclaimed_total"] == 0 {
		t.Fatalf("%v messages moved, %v segments reclaimed", st["compacted_messages_total"], st["segments_reclaimed_total"])
	}
}
