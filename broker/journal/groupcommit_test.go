package journal

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// writers runs w goroutines adding n messages each, one at a time, and
// calls answered with each message's seq once its Write returned.
func writers(t *testing.T, s *Store, w, n int, answered func(seq uint64)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, w)
	for g := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				m := testMsg(g*n + i)
				if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
					errs <- err
					return
				}
				answered(m.Seq)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestGroupCommitSharesSyncs: concurrent writers share fdatasyncs. With
// 16 writers and a 2 ms sync, every batch arriving during a sync joins
// the next: far fewer syncs than batches.
func TestGroupCommitSharesSyncs(t *testing.T) {
	var syncs atomic.Int64
	fs := syncCountFS{vfs.NewMem(), &syncs, 2 * time.Millisecond}
	s := mustOpen(t, fs, Options{SegmentSize: 1 << 20})
	defer s.Close()
	const w, n = 16, 25
	before := syncs.Load()
	writers(t, s, w, n, func(uint64) {})
	got := syncs.Load() - before
	if got <= 0 || got > w*n/2 {
		t.Fatalf("%d fdatasyncs for %d batches from %d writers: want at least 2 batches a sync", got, w*n, w)
	}
	st := s.Stats()
	t.Logf("%d batches, %d fdatasyncs, %.0f groups, largest %.0f, waited %.3fs (%v timeouts)",
		w*n, got, st["group_commits_total"], st["group_commit_batches_max"], st["group_wait_seconds_total"], st["group_wait_timeouts_total"])
}

// TestGroupCommitAnswersOnlyDurable: a batch is answered only once it is
// durable. While writers run, every 25th answer crashes the filesystem (a
// copy of what was synced at that moment): every message whose Write had
// returned by then must be in the crashed copy.
func TestGroupCommitAnswersOnlyDurable(t *testing.T) {
	var syncs atomic.Int64
	mem := vfs.NewCrashableMem()
	opts := Options{SegmentSize: 64 << 10}
	s := mustOpen(t, syncCountFS{mem, &syncs, time.Millisecond}, opts)
	defer s.Close()
	type crash struct {
		fs   *vfs.MemFS
		seqs []uint64
	}
	var (
		mu       sync.Mutex
		answered []uint64
		crashes  []crash
	)
	writers(t, s, 8, 60, func(seq uint64) {
		mu.Lock()
		defer mu.Unlock()
		answered = append(answered, seq)
		if len(answered)%25 == 0 {
			crashes = append(crashes, crash{mem.Crash(), append([]uint64(nil), answered...)})
		}
	})
	if len(crashes) != 8*60/25 {
		t.Fatalf("%d crashes taken, want %d", len(crashes), 8*60/25)
	}
	for i, c := range crashes {
		s2 := mustOpen(t, c.fs, opts)
		got := recovered(t, s2)
		s2.Close()
		for _, seq := range c.seqs {
			if _, ok := got[seq]; !ok {
				t.Fatalf("crash %d: message %d was answered before it and is lost (%d answered, %d recovered)", i, seq, len(c.seqs), len(got))
			}
		}
	}
	t.Logf("%d crashes checked, %d fdatasyncs", len(crashes), syncs.Load())
}
