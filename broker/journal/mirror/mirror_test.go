package mirror

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
	"github.com/lossbench/lossbench/broker/vfs/errorfs"
)

func onB(inj errorfs.Injector) errorfs.Injector {
	return errorfs.OnPath(func(p string) bool { return strings.HasPrefix(p, "/b/") }, inj)
}

func TestEveryCopyHoldsTheJournal(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, mem, Options{}, nil)
	send(t, s, 0, 200)
	if h, n := s.Set().Count(); h != 2 || n != 2 {
		t.Fatalf("healthy %d of %d, want 2 of 2", h, n)
	}
	// A crash now: each copy alone holds every acknowledged message (each
	// was synced on both before its Write returned).
	crashed := mem.Crash()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	identical(t, mem)
	for _, d := range []string{dirA, dirB} {
		j, err := journal.Open(d, journal.Options{FS: crashed.Crash(), SegmentSize: 16 << 10})
		if err != nil {
			t.Fatalf("%s alone: %v", d, err)
		}
		wantAll(t, numbers(t, j), 0, 200)
		j.Close()
	}
}

// A crash leaves each copy with whatever it synced: the writes to the
// two copies are not atomic together. Every acknowledged message is in
// each copy that was healthy; recovery takes the copy whose log goes
// furthest, says so, and makes the other identical to it.
func TestCrashBetweenTheWritesToTwoCopies(t *testing.T) {
	mem := vfs.NewCrashableMem()
	hold := make(chan struct{})
	held := make(chan struct{}, 1)
	sw := &errorfs.Switch{Injector: onB(errorfs.InjectorFunc(func(op *errorfs.Op) error {
		if op.Kind == errorfs.OpSync {
			select {
			case held <- struct{}{}:
			default:
			}
			<-hold
		}
		return nil
	}))}
	fsB := errorfs.Wrap(mem, sw)
	s := mustOpen(t, mem, fsB, Options{}, nil)
	send(t, s, 0, 50)
	// The next batch is written to both and synced on A; B's sync hangs:
	// the crash comes now. The batch was not acknowledged.
	sw.On()
	done := make(chan error, 1)
	go func() { done <- s.Write(bg, &store.Batch{Adds: []*store.Message{msg(50)}}) }()
	<-held
	crashed := mem.Crash()
	sw.Off()
	close(hold)
	<-done
	s.Close()

	log := &logBuf{}
	r := mustOpen(t, crashed, crashed, Options{}, log)
	got := numbers(t, r)
	wantAll(t, got, 0, 51) // 50 synced on A, the only copy that has it, is kept too
	if !log.contains("recovering from " + dirA) {
		t.Fatalf("log does not say %s was chosen:\n%v", dirA, log)
	}
	if states(r.Set()) != "healthy,healthy" {
		t.Fatalf("states %s", states(r.Set()))
	}
	send(t, r, 51, 60)
	r.Close()
	identical(t, crashed)
}

// The same with torn, random prefixes of the unsynced writes in each
// copy: nothing acknowledged is ever lost, and the copies agree after.
func TestCrashTornCopies(t *testing.T) {
	seeds := uint64(20)
	if testing.Short() {
		seeds = 6
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		mem := vfs.NewCrashableMem()
		hold := make(chan struct{})
		sw := &errorfs.Switch{Injector: errorfs.InjectorFunc(func(op *errorfs.Op) error {
			if op.Kind == errorfs.OpSync {
				<-hold
			}
			return nil
		})}
		fs := errorfs.Wrap(mem, sw)
		s := mustOpen(t, fs, fs, Options{}, nil)
		n := 20 + int(seed)*7
		send(t, s, 0, n)
		sw.On()
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); s.Write(bg, &store.Batch{Adds: []*store.Message{msg(1000 + i)}}) }()
		}
		waitFor(t, "unsynced writes", func() bool { return s.Stats()["bytes_written_total"] > 0 })
		crashed := mem.CrashTorn(seed)
		close(hold)
		wg.Wait()
		s.Close()
		r := mustOpen(t, crashed, crashed, Options{}, nil)
		wantAll(t, numbers(t, r), 0, n)
		r.Close()
		identical(t, crashed)
	}
}

// An fsync that fails on one copy drops it: the write is acknowledged
// from the other, and the dropped copy, stale from then on, is never
// read again: at the next start it is rebuilt, not recovered from.
func TestFsyncErrorDropsTheCopy(t *testing.T) {
	mem := vfs.NewCrashableMem()
	sw := &errorfs.Switch{Injector: onB(errorfs.FromNth(1, syscall.EIO, errorfs.OpSync))}
	log := &logBuf{}
	s := mustOpen(t, mem, errorfs.Wrap(mem, sw), Options{}, log)
	send(t, s, 0, 20)
	sw.On()
	send(t, s, 20, 100) // every one acknowledged, from A alone
	if got := states(s.Set()); got != "healthy,failed" {
		t.Fatalf("states %s, want healthy,failed", got)
	}
	st := s.Stats()
	if st["journal_mirrors_healthy"] != 1 || st["journal_mirrors_total"] != 2 {
		t.Fatalf("stats %v", st)
	}
	if e := s.Mirrors()[1].Error; !strings.Contains(e, "input/output error") {
		t.Fatalf("status error %q does not say EIO", e)
	}
	if !log.contains("ALARM") {
		t.Fatalf("no alarm logged:\n%v", log)
	}
	crashed := mem.Crash()
	s.Close()

	// B's record is behind A's generation (or marked stale): not used.
	log = &logBuf{}
	r := mustOpen(t, crashed, crashed, Options{}, log)
	wantAll(t, numbers(t, r), 0, 100)
	if !log.contains(dirB + " not used") {
		t.Fatalf("log does not say %s was not used:\n%v", dirB, log)
	}
	waitFor(t, "rebuild", func() bool { return states(r.Set()) == "healthy,healthy" })
	send(t, r, 100, 110)
	r.Close()
	identical(t, crashed)
}

// A stale copy is never used, even when it is the only one left.
func TestStaleCopyNeverUsed(t *testing.T) {
	mem := vfs.NewCrashableMem()
	sw := &errorfs.Switch{Injector: onB(errorfs.OnNth(1, syscall.EIO, errorfs.OpSync))}
	s := mustOpen(t, mem, errorfs.Wrap(mem, sw), Options{}, nil)
	send(t, s, 0, 10)
	sw.On()
	send(t, s, 10, 30) // B dropped at the first; the fault was transient
	s.Close()
	// A's disk is lost. B alone is stale: it misses 10..29.
	removeAll(t, mem, dirA)
	_, err := open(t, mem, mem, Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "no healthy copy") {
		t.Fatalf("Open with only a stale copy: %v, want no healthy copy", err)
	}
	// Nor alone, as a single-directory journal.
	if err := CheckAlone(mem, dirB); err == nil || !strings.Contains(err.Error(), "stale copy") {
		t.Fatalf("CheckAlone of the stale copy: %v", err)
	}
	if err := CheckAlone(mem, "/elsewhere"); err != nil {
		t.Fatalf("CheckAlone of a plain directory: %v", err)
	}
}

func removeAll(t testing.TB, fs vfs.FS, dir string) {
	names, _ := fs.List(dir)
	for _, n := range names {
		if err := fs.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Remove(dir); err != nil {
		t.Fatal(err)
	}
}

func TestMinMirrors(t *testing.T) {
	mem := vfs.NewCrashableMem()
	sw := &errorfs.Switch{Injector: onB(errorfs.FromNth(1, syscall.EIO, errorfs.OpSync))}
	s := mustOpen(t, mem, errorfs.Wrap(mem, sw), Options{MinMirrors: 2}, nil)
	send(t, s, 0, 10)
	sw.On()
	err := s.Write(bg, &store.Batch{Adds: []*store.Message{msg(10)}})
	if !errors.Is(err, store.ErrFailed) || !strings.Contains(err.Error(), "min-mirrors") {
		t.Fatalf("Write with 1 copy under min-mirrors 2: %v", err)
	}
	s.Close()
}

func TestLastCopyFailsStop(t *testing.T) {
	mem := vfs.NewCrashableMem()
	sw := &errorfs.Switch{Injector: errorfs.FromNth(1, syscall.EIO, errorfs.OpSync)}
	fs := errorfs.Wrap(mem, sw)
	s := mustOpen(t, fs, fs, Options{}, nil)
	send(t, s, 0, 10)
	sw.On()
	err := s.Write(bg, &store.Batch{Adds: []*store.Message{msg(10)}})
	if !errors.Is(err, store.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Write with every copy failing: %v", err)
	}
	if err := s.Write(bg, &store.Batch{Adds: []*store.Message{msg(11)}}); err == nil {
		t.Fatal("a failed journal took another write")
	}
	s.Close()
}

// A corrupt block in one copy: recovery takes the other without
// --repair, and makes the corrupt one good again.
func TestCorruptCopy(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, mem, Options{}, nil)
	send(t, s, 0, 300) // several 16 KiB segments
	s.Close()
	names, _ := mem.List(dirA)
	var seg string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			seg = n
			break
		}
	}
	f, err := mem.OpenFile(filepath.Join(dirA, seg), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(strings.Repeat("\xff", 512))
	f.WriteAt(junk, 4096)
	f.Sync()
	f.Close()
	if _, err := journal.Verify(dirA, journal.Options{FS: mem}); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("the damaged copy verifies: %v", err)
	}
	log := &logBuf{}
	r := mustOpen(t, mem, mem, Options{}, log)
	wantAll(t, numbers(t, r), 0, 300)
	if !log.contains("recovering from "+dirB) || !log.contains(dirA+" is corrupt") {
		t.Fatalf("log does not say why %s was chosen:\n%v", dirB, log)
	}
	r.Close()
	identical(t, mem)
}

// A new, empty copy is rebuilt while the journal takes writes, then is
// healthy and holds everything.
func TestRebuildOnline(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, mem, Options{}, nil)
	send(t, s, 0, 300)
	s.Close()
	removeAll(t, mem, dirB) // B's disk replaced by a blank one
	log := &logBuf{}
	r := mustOpen(t, mem, mem, Options{RebuildChunk: 512}, log)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		send(t, r, 300, 600)
	}()
	waitFor(t, "rebuild", func() bool {
		st := states(r.Set())
		if st == "healthy,failed" {
			t.Fatalf("rebuild failed: %v\n%v", r.Mirrors(), log)
		}
		return st == "healthy,healthy"
	})
	wg.Wait()
	send(t, r, 600, 620)
	if !log.contains("rebuilt") {
		t.Fatalf("no rebuild logged:\n%v", log)
	}
	r.Close()
	identical(t, mem)
	j, err := journal.Open(dirB, journal.Options{FS: mem, SegmentSize: 16 << 10})
	if err != nil {
		t.Fatalf("rebuilt copy alone: %v", err)
	}
	wantAll(t, numbers(t, j), 0, 620)
	j.Close()
}

// A crash during a rebuild leaves the copy marked stale: it is rebuilt
// again, never recovered from.
func TestRebuildInterruptedByCrash(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, mem, Options{}, nil)
	send(t, s, 0, 300)
	s.Close()
	removeAll(t, mem, dirB)
	hold := make(chan struct{})
	held := make(chan struct{}, 1)
	var writes int
	var mu sync.Mutex
	sw := &errorfs.Switch{Injector: onB(errorfs.InjectorFunc(func(op *errorfs.Op) error {
		if op.Kind != errorfs.OpWrite {
			return nil
		}
		mu.Lock()
		writes++
		n := writes
		mu.Unlock()
		if n == 20 {
			held <- struct{}{}
			<-hold
		}
		return nil
	}))}
	fsB := errorfs.Wrap(mem, sw)
	sw.On()
	r := mustOpen(t, mem, fsB, Options{RebuildChunk: 512}, nil)
	<-held // mid-rebuild
	if got := states(r.Set()); got != "healthy,rebuilding" {
		t.Fatalf("states %s mid-rebuild", got)
	}
	crashed := mem.Crash()
	close(hold)
	r.Close()

	log := &logBuf{}
	r = mustOpen(t, crashed, crashed, Options{}, log)
	if !log.contains(dirB + " not used: marked stale") {
		t.Fatalf("the half-rebuilt copy was not refused:\n%v", log)
	}
	wantAll(t, numbers(t, r), 0, 300)
	waitFor(t, "rebuild", func() bool { return states(r.Set()) == "healthy,healthy" })
	r.Close()
	identical(t, crashed)
	// And with A lost now, B (rebuilt) is the journal.
	removeAll(t, crashed, dirA)
	r = mustOpen(t, crashed, crashed, Options{}, nil)
	wantAll(t, numbers(t, r), 0, 300)
	r.Close()
}

// A directory that is not a copy of this journal is refused, not wiped.
func TestForeignDirectoryRefused(t *testing.T) {
	mem := vfs.NewCrashableMem()
	j, err := journal.Open(dirB, journal.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	send(t, j, 0, 3)
	j.Close()
	s := mustOpen(t, mem, vfs.NewCrashableMem(), Options{}, nil) // A new, B elsewhere
	s.Close()
	_, err = open(t, mem, mem, Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "not a copy of this journal") {
		t.Fatalf("Open over a foreign journal: %v", err)
	}
}

// TestEachWithNoCopyLeft: once every copy has been dropped (by another
// operation that failed meanwhile), a change finds no copy to run on. It
// must return the fail-stop error, never succeed silently or panic.
func TestEachWithNoCopyLeft(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s := mustOpen(t, mem, mem, Options{}, nil)
	set := s.Set()
	for _, m := range set.ms {
		set.drop(m, errors.New("disk gone"))
	}
	err := set.FS().Remove(filepath.Join(set.Root(), "no-such-file"))
	if err == nil || !strings.Contains(err.Error(), "every copy failed") {
		t.Fatalf("Remove with no healthy copy = %v, want the every-copy-failed error", err)
	}
	if err := set.each(nil, func(*mirror) error { return nil }); err == nil {
		t.Fatal("each over no copy = nil, want an error")
	}
}
