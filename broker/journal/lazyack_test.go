package journal

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// syncCountFS counts File.Sync calls (fdatasyncs) of the files it opens;
// with d set, each takes d longer, the way a disk's fdatasync takes time.
type syncCountFS struct {
	vfs.FS
	n *atomic.Int64
	d time.Duration
}

type syncCountFile struct {
	vfs.File
	n *atomic.Int64
	d time.Duration
}

func (f syncCountFile) Sync() error {
	time.Sleep(f.d)
	f.n.Add(1)
	return f.File.Sync()
}

func (fs syncCountFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return syncCountFile{f, fs.n, fs.d}, nil
}

func (fs syncCountFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenFile(name, flag, perm))
}
func (fs syncCountFS) Create(name string) (vfs.File, error) { return fs.wrap(fs.FS.Create(name)) }
func (fs syncCountFS) Open(name string) (vfs.File, error)   { return fs.wrap(fs.FS.Open(name)) }

// ackLoop sends n messages one at a time, each durable, and acks each
// after it was added, the way one producer and one consumer do: the ack
// of message i goes to the store before the add of message i+1. It
// returns the fdatasyncs the loop cost.
func ackLoop(t *testing.T, s *Store, syncs *atomic.Int64, n int, lazy bool) int64 {
	t.Helper()
	before := syncs.Load()
	for i := range n {
		m := testMsg(i)
		addMsgs(t, s, m)
		var err error
		if lazy {
			err = s.WriteAcksLazy(bg, []uint64{m.Seq})
		} else {
			err = s.Write(bg, &store.Batch{Acks: []uint64{m.Seq}})
		}
		if err != nil {
			t.Fatalf("ack %d: %v", m.Seq, err)
		}
	}
	return syncs.Load() - before
}

// TestLazyAcksRideOnNextSync counts fdatasyncs per persistent add with
// its ack: at most one (plus the last ack's), where durable acks cost two.
func TestLazyAcksRideOnNextSync(t *testing.T) {
	const n = 200
	for _, lazy := range []bool{true, false} {
		var syncs atomic.Int64
		mem := vfs.NewCrashableMem()
		// A long lazyAckDelay: no timer adds a sync, so the count is exact.
		s := mustOpen(t, syncCountFS{FS: mem, n: &syncs}, Options{lazyAckDelay: time.Hour, SegmentSize: 1 << 20, syncPrealloc: true})
		got := ackLoop(t, s, &syncs, n, lazy)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("lazy %v: %d fdatasyncs for %d adds with their acks (%.2f per message)", lazy, got, n, float64(got)/n)
		if lazy && got > n {
			t.Errorf("lazy acks: %d fdatasyncs for %d messages, want at most one per message", got, n)
		}
		if !lazy && got < 2*n {
			// The count is what the lazy case saves; if this fails, the
			// counting wrapper no longer sees the journal's syncs.
			t.Errorf("durable acks: %d fdatasyncs for %d messages, want two per message", got, n)
		}
		// Close synced the last lazy ack: nothing comes back after a crash.
		s2 := mustOpen(t, mem.Crash(), Options{SegmentSize: 1 << 20})
		if left := recovered(t, s2); len(left) != 0 {
			t.Errorf("lazy %v: %d acknowledged messages recovered after Close and a crash", lazy, len(left))
		}
		s2.Close()
	}
}

// TestLazyAckSyncedWithoutNextWrite: a lazy ack with no write after it is
// synced by the timer, so a crash after that does not bring it back; and
// an add is never answered before its own sync.
func TestLazyAckSyncedWithoutNextWrite(t *testing.T) {
	var syncs atomic.Int64
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, syncCountFS{FS: mem, n: &syncs}, Options{lazyAckDelay: 5 * time.Millisecond, SegmentSize: 1 << 20})
	m := testMsg(1)
	before := syncs.Load()
	addMsgs(t, s, m)
	if syncs.Load() == before {
		t.Fatal("add answered without an fdatasync")
	}
	afterAdd := syncs.Load()
	if err := s.WriteAcksLazy(bg, []uint64{m.Seq}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syncs.Load() == afterAdd {
		if time.Now().After(deadline) {
			t.Fatal("lazy ack never synced without a following write")
		}
		time.Sleep(time.Millisecond)
	}
	// The sync is counted before it returns; wait for the writer's round
	// to end (Stats' fsyncs_total is set after it).
	for s.Stats()["fsyncs_total"] < 2 {
		time.Sleep(time.Millisecond)
	}
	crashed := mem.Crash() // the store is not closed: as if killed
	s2 := mustOpen(t, crashed, Options{SegmentSize: 1 << 20})
	defer s2.Close()
	if left := recovered(t, s2); len(left) != 0 {
		t.Errorf("lazy ack synced by its timer came back after a crash: %d messages", len(left))
	}
	s.Close()
}
