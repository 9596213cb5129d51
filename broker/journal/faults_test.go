package journal

import (
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
	"github.com/lossbench/lossbench/broker/vfs/errorfs"
)

// faultFS wraps mem with inj behind a switch, and records every operation.
func faultFS(mem *vfs.MemFS, inj errorfs.Injector) (vfs.FS, *errorfs.Switch, *errorfs.Recorder) {
	sw := &errorfs.Switch{Injector: inj}
	rec := &errorfs.Recorder{}
	return errorfs.Wrap(mem, errorfs.Any(sw, rec)), sw, rec
}

func TestSyncErrorFailStop(t *testing.T) {
	for _, policy := range []SyncPolicy{{Mode: SyncBatch}, {Mode: SyncAlways}} {
		t.Run(policy.String(), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			fs, sw, rec := faultFS(mem, errorfs.OnNth(1, errorfs.ErrInjected, errorfs.OpSync))
			s := mustOpen(t, fs, Options{Sync: policy, SegmentSize: 8 << 10, syncPrealloc: true})
			first := testMsg(0)
			addMsgs(t, s, first)

			sw.On()
			err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(1)}})
			if !errors.Is(err, store.ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("Write with failing sync = %v, want store.ErrFailed wrapping the cause", err)
			}
			sw.Off() // the disk works again: the store must still refuse
			syncs, writes := rec.Count(errorfs.OpSync), rec.Count(errorfs.OpWrite)
			for i := 2; i < 5; i++ {
				err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(i)}})
				if !errors.Is(err, store.ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
					t.Fatalf("Write after failure = %v, want the first failure", err)
				}
			}
			if err := s.Write(bg, &store.Batch{Acks: []uint64{first.Seq}}); !errors.Is(err, store.ErrFailed) {
				t.Fatalf("ack after failure = %v", err)
			}
			if got := s.Stats()["failed"]; got != 1 {
				t.Errorf("Stats failed = %v", got)
			}
			if err := s.Close(); !errors.Is(err, store.ErrFailed) {
				t.Errorf("Close = %v, want the failure", err)
			}
			if n := rec.Count(errorfs.OpSync); n != syncs {
				t.Errorf("%d syncs after the failed one: a failed sync must never be retried", n-syncs)
			}
			if n := rec.Count(errorfs.OpWrite); n != writes {
				t.Errorf("%d writes after the failure", n-writes)
			}

			// What was acknowledged survives a crash.
			s2 := mustOpen(t, mem.Crash(), Options{SegmentSize: 8 << 10})
			defer s2.Close()
			got := recovered(t, s2)
			if m, ok := got[first.Seq]; !ok || !sameMsg(m, first) {
				t.Fatalf("acknowledged message lost after sync failure: %v", got)
			}
		})
	}
}

func TestWriteErrorFailStop(t *testing.T) {
	mem := vfs.NewCrashableMem()
	fs, sw, _ := faultFS(mem, errorfs.FromNth(1, errorfs.ErrInjected, errorfs.OpWrite))
	s := mustOpen(t, fs, Options{SegmentSize: 8 << 10, syncPrealloc: true})
	addMsgs(t, s, testMsg(0))
	sw.On()
	if err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(1)}}); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Write = %v", err)
	}
	sw.Off()
	if err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(2)}}); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Write after failure = %v", err)
	}
	s.Close()
	s2 := mustOpen(t, mem, Options{SegmentSize: 8 << 10})
	defer s2.Close()
	if got := recovered(t, s2); len(got) != 1 {
		t.Fatalf("recovered %d messages, want 1", len(got))
	}
}

func TestENOSPC(t *testing.T) {
	mem := vfs.NewCrashableMem()
	// Room for the first segment, its preallocated successor, and a few
	// records more: the journal must fill up while rolling or writing.
	const seg = 4 << 10
	fs, sw, _ := faultFS(mem, errorfs.ENOSPCAfter(3*seg))
	sw.On()
	logs := &logBuf{}
	s := mustOpen(t, fs, Options{SegmentSize: seg, syncPrealloc: true})
	var acked []*store.Message
	var err error
	for i := 0; i < 1000; i++ {
		m := testMsg(i)
		if err = s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
			break
		}
		acked = append(acked, m)
	}
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, store.ErrFailed) {
		t.Fatalf("writing to a full disk: %v, want ENOSPC wrapped in store.ErrFailed", err)
	}
	if err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(0)}}); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Write after ENOSPC = %v", err)
	}
	s.Close()
	// After a crash (and with space freed) every acknowledged message is
	// there, and a partly written frame is cut off as a torn tail.
	s2 := mustOpen(t, mem.Crash(), Options{SegmentSize: seg, Logf: logs.logf})
	defer s2.Close()
	got := recovered(t, s2)
	for _, m := range acked {
		if g, ok := got[m.Seq]; !ok || !sameMsg(g, m) {
			t.Fatalf("message %d acknowledged before ENOSPC lost", m.Seq)
		}
	}
	addMsgs(t, s2, testMsg(5000))
}

func TestTornWrite(t *testing.T) {
	for seed := uint64(0); seed < 8; seed++ {
		mem := vfs.NewCrashableMem()
		fs, sw, _ := faultFS(mem, errorfs.TornWrite(3, seed))
		s := mustOpen(t, fs, Options{SegmentSize: 8 << 10, syncPrealloc: true, Sync: SyncPolicy{Mode: SyncAlways}})
		sw.On()
		var acked []*store.Message
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			m := testMsg(i)
			if err = s.Write(bg, &store.Batch{Adds: []*store.Message{m, testMsg(100 + i)}}); err == nil {
				acked = append(acked, m)
			}
		}
		if !errors.Is(err, syscall.EIO) || len(acked) != 2 {
			t.Fatalf("seed %d: torn third write: %v after %d writes", seed, err, len(acked))
		}
		s.Close()
		// The torn bytes reached the page cache: reopen without a crash.
		logs := &logBuf{}
		s2 := mustOpen(t, mem, Options{SegmentSize: 8 << 10, Logf: logs.logf})
		got := recovered(t, s2)
		if len(got) != 4 {
			t.Fatalf("seed %d: recovered %d messages, want 4 (%s)", seed, len(got), logs)
		}
		for _, m := range acked {
			if !sameMsg(got[m.Seq], m) {
				t.Fatalf("seed %d: message %d damaged", seed, m.Seq)
			}
		}
		addMsgs(t, s2, testMsg(99))
		s2.Close()
		s3 := mustOpen(t, mem, Options{SegmentSize: 8 << 10})
		if got := recovered(t, s3); len(got) != 5 {
			t.Fatalf("seed %d: after writing past a torn tail recovered %d, want 5", seed, len(got))
		}
		s3.Close()
	}
}

// A failing preallocation surfaces when the journal needs the segment,
// and fails it.
func TestPreallocErrorFailsOnRoll(t *testing.T) {
	mem := vfs.NewCrashableMem()
	fs, sw, _ := faultFS(mem, errorfs.FromNth(1, errorfs.ErrInjected, errorfs.OpOpen))
	sw.On()
	// The first segment is created by Open; the injector fails opening the
	// second in the background.
	sw.Off()
	s := mustOpen(t, fs, Options{SegmentSize: 2 << 10, syncPrealloc: true})
	defer s.Close()
	sw.On()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(i)}})
	}
	// The successor of the first segment was preallocated before the switch
	// was on; the one after it fails.
	if !errors.Is(err, store.ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Write = %v", err)
	}
}

func TestRandomFaultsNeverLoseAcknowledged(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		mem := vfs.NewCrashableMem()
		fs, sw, _ := faultFS(mem, errorfs.Random(0.02, seed, errorfs.ErrInjected,
			errorfs.OpWrite, errorfs.OpSync, errorfs.OpSyncDir, errorfs.OpOpen))
		s := mustOpen(t, fs, Options{SegmentSize: 2 << 10})
		sw.On()
		var mu sync.Mutex
		acked := map[uint64]*store.Message{}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					m := testMsg(w*100 + i)
					if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
						if !errors.Is(err, store.ErrFailed) {
							t.Errorf("seed %d: Write error %v does not wrap store.ErrFailed", seed, err)
						}
						return
					}
					mu.Lock()
					acked[m.Seq] = m
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		s.Close()
		sw.Off()
		s2, err := Open(testDir, Options{FS: mem.Crash(), SegmentSize: 2 << 10})
		if err != nil {
			t.Fatalf("seed %d: reopen after faults: %v", seed, err)
		}
		got := recovered(t, s2)
		for seq, m := range acked {
			if g, ok := got[seq]; !ok || !sameMsg(g, m) {
				t.Fatalf("seed %d: acknowledged message %d lost", seed, seq)
			}
		}
		s2.Close()
	}
}

// A preallocation that fails once (say the disk was full until segments
// were reclaimed) is retried once at the roll; it writes no record.
func TestPreallocRetriedOnce(t *testing.T) {
	mem := vfs.NewCrashableMem()
	fs, sw, _ := faultFS(mem, errorfs.OnNth(1, errorfs.ErrInjected, errorfs.OpOpen))
	logs := &logBuf{}
	s := mustOpen(t, fs, Options{SegmentSize: 2 << 10, syncPrealloc: true, Logf: logs.logf})
	defer s.Close()
	sw.On()
	for i := 0; i < 200; i++ {
		if err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(i)}}); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	if !logs.contains("retrying") {
		t.Fatalf("no preallocation failure seen: %q", logs)
	}
}

// TestPreallocFailureLoggedAtOpen: the next segment's preallocation
// fails right after Open (a full disk, a file size limit): that is
// logged then, not first at the roll that needs the segment, which tries
// again.
func TestPreallocFailureLoggedAtOpen(t *testing.T) {
	mem := vfs.NewMem()
	second := filepath.Join(testDir, segmentName(2))
	sw := &errorfs.Switch{Injector: errorfs.OnPath(func(p string) bool { return p == second },
		errorfs.FromNth(1, syscall.ENOSPC, errorfs.OpWrite))}
	sw.On()
	logs := &logBuf{}
	s := mustOpen(t, errorfs.Wrap(mem, sw), Options{SegmentSize: 4 << 10, Logf: logs.logf})
	defer s.Close()
	for deadline := time.Now().Add(10 * time.Second); !logs.contains("preallocate segment " + segmentName(2)); {
		if time.Now().After(deadline) {
			t.Fatalf("a failed preallocation at Open was not logged: %q", logs)
		}
		time.Sleep(time.Millisecond)
	}
	if !logs.contains("no space left") {
		t.Errorf("log does not say why: %q", logs)
	}
	sw.Off() // space was freed: the roll's retry succeeds
	for i := 0; s.Stats()["segments"] < 2; i++ {
		addMsgs(t, s, testMsg(i))
	}
}

// TestSyncErrorFailsEveryWaiter: with many writers in one group commit, a
// failed fdatasync answers every batch waiting for a sync with the
// failure (none hangs, none is acknowledged), the store stays failed, the
// sync is never retried, and what was acknowledged before survives a
// crash.
func TestSyncErrorFailsEveryWaiter(t *testing.T) {
	const writers = 16
	for _, nth := range []int64{1, 3, 10} {
		mem := vfs.NewCrashableMem()
		fs, sw, rec := faultFS(mem, errorfs.OnNth(nth, errorfs.ErrInjected, errorfs.OpSync))
		s := mustOpen(t, fs, Options{SegmentSize: 1 << 20, syncPrealloc: true})
		sw.On()
		var mu sync.Mutex
		acked := map[uint64]*store.Message{}
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					m := testMsg(w*1000 + i)
					err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}})
					if err != nil {
						if !errors.Is(err, store.ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
							t.Errorf("sync %d: Write = %v, want store.ErrFailed wrapping the cause", nth, err)
						}
						return
					}
					mu.Lock()
					acked[m.Seq] = m
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait() // every writer ends: each waiter was answered
		syncs := rec.Count(errorfs.OpSync)
		if err := s.Write(bg, &store.Batch{Adds: []*store.Message{testMsg(99999)}}); !errors.Is(err, store.ErrFailed) {
			t.Fatalf("sync %d: Write after the failure = %v, want it refused", nth, err)
		}
		if err := s.Close(); !errors.Is(err, store.ErrFailed) {
			t.Errorf("sync %d: Close = %v, want the failure", nth, err)
		}
		if n := rec.Count(errorfs.OpSync); n != syncs {
			t.Errorf("sync %d: %d syncs after the failed one: a failed sync must never be retried", nth, n-syncs)
		}
		sw.Off()
		s2 := mustOpen(t, mem.Crash(), Options{SegmentSize: 1 << 20})
		got := recovered(t, s2)
		for seq, m := range acked {
			if g, ok := got[seq]; !ok || !sameMsg(g, m) {
				t.Fatalf("sync %d: acknowledged message %d lost", nth, seq)
			}
		}
		t.Logf("sync %d failed: %d messages acknowledged before, all recovered", nth, len(acked))
		s2.Close()
	}
}
