package lazyfs

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// mountWith mounts a lazyfs with opt over a fresh backing folder, or
// skips the test where FUSE cannot be mounted.
func mountWith(t *testing.T, opt Options) (l *FS, mnt string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping: lazyfs needs FUSE as root: %v", err)
	}
	mnt = t.TempDir()
	l, err := Mount(t.TempDir(), mnt, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return l, mnt
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A write older than the expiry is written back by the flusher's next
// pass and survives a cut; a recent one does not.
func TestWritebackOldWriteSurvivesCut(t *testing.T) {
	clk := &fakeClock{}
	clk.advance(time.Hour)
	// The flusher's own ticks never come in this test: it runs the passes.
	l, mnt := mountWith(t, Options{Writeback: Writeback{Expire: 30 * time.Second, Interval: time.Hour}, Now: clk.now})
	old := bytes.Repeat([]byte("o"), 5000)
	recent := bytes.Repeat([]byte("r"), 5000)
	writeFile(t, filepath.Join(mnt, "old"), old, false)
	clk.advance(29 * time.Second)
	writeFile(t, filepath.Join(mnt, "recent"), recent, false)
	l.writebackExpired()
	if s := l.Stats(); s.WrittenBack != 0 {
		t.Fatalf("a pass 29 s after the write (expiry 30 s) wrote back %d bytes", s.WrittenBack)
	}
	clk.advance(time.Second)
	l.writebackExpired()
	if s := l.Stats(); s.WrittenBack != 2*pageSize || s.DirtyBytes != 2*pageSize {
		t.Fatalf("after the pass at 30 s: %+v; want the old file's 2 pages written back, the recent file's 2 still dirty", s)
	}
	l.PowerCut()
	if got := readFile(t, filepath.Join(mnt, "old")); !bytes.Equal(got, old) {
		t.Errorf("the old write after the cut: %d bytes, want its %d", len(got), len(old))
	}
	if got := readFile(t, filepath.Join(mnt, "recent")); len(got) != 0 {
		t.Errorf("the recent write after the cut: %d bytes, want 0", len(got))
	}
}

// A file's age is the time it went from clean to dirty, as in the
// kernel: writing it again does not make it younger, the flusher writes
// all of it, and once clean the next write starts a new age.
func TestWritebackAgeIsTheFiles(t *testing.T) {
	clk := &fakeClock{}
	l, mnt := mountWith(t, Options{Writeback: Writeback{Expire: 30 * time.Second, Interval: time.Hour}, Now: clk.now})
	path := filepath.Join(mnt, "log")
	a, b, c := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 100), bytes.Repeat([]byte("c"), 100)
	appendFile(t, path, a)
	clk.advance(20 * time.Second)
	appendFile(t, path, b) // 20 s later, the file still dirtied at 0
	clk.advance(10 * time.Second)
	l.writebackExpired() // at 30 s: a and b go
	clk.advance(time.Second)
	appendFile(t, path, c) // dirtied anew at 31 s
	clk.advance(29 * time.Second)
	l.writebackExpired() // at 60 s: c is 29 s old, stays
	l.PowerCut()
	if got, want := readFile(t, path), append(append([]byte{}, a...), b...); !bytes.Equal(got, want) {
		t.Fatalf("after the cut: %q, want the first two writes only", got)
	}
}

// With no writeback nothing unsynced survives, however old.
func TestWritebackNone(t *testing.T) {
	clk := &fakeClock{}
	l, mnt := mountWith(t, Options{Now: clk.now})
	if !l.Writeback().None() || l.Writeback().String() != "none" {
		t.Fatalf("zero Options: writeback %v", l.Writeback())
	}
	writeFile(t, filepath.Join(mnt, "a"), []byte("never synced"), false)
	clk.advance(24 * time.Hour)
	l.writebackExpired()
	l.PowerCut()
	if got := readFile(t, filepath.Join(mnt, "a")); len(got) != 0 {
		t.Fatalf("after the cut: %q, want nothing", got)
	}
	if s := l.Stats(); s.WrittenBack != 0 {
		t.Fatalf("wrote back %d bytes", s.WrittenBack)
	}
}

// The flusher runs on its own every Interval.
func TestWritebackFlusherRuns(t *testing.T) {
	l, mnt := mountWith(t, Options{Writeback: Writeback{Expire: 20 * time.Millisecond, Interval: 10 * time.Millisecond}})
	data := []byte("written back by the flusher")
	writeFile(t, filepath.Join(mnt, "a"), data, false)
	deadline := time.Now().Add(30 * time.Second)
	for l.Stats().WrittenBack == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no writeback after 30 s: %+v", l.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.PowerCut()
	if got := readFile(t, filepath.Join(mnt, "a")); !bytes.Equal(got, data) {
		t.Fatalf("after the cut: %q, want %q", got, data)
	}
}

// A stall holds the flusher too: nothing is written back while the disk
// holds every operation.
func TestWritebackWaitsOutStall(t *testing.T) {
	clk := &fakeClock{}
	l, mnt := mountWith(t, Options{Writeback: Writeback{Expire: time.Second, Interval: time.Hour}, Now: clk.now})
	writeFile(t, filepath.Join(mnt, "a"), []byte("x"), false)
	clk.advance(time.Minute)
	l.Stall(time.Hour)
	l.writebackExpired()
	l.Unstall()
	if s := l.Stats(); s.WrittenBack != 0 {
		t.Fatalf("wrote back %d bytes during a stall", s.WrittenBack)
	}
	l.writebackExpired()
	if s := l.Stats(); s.WrittenBack != pageSize {
		t.Fatalf("after the stall: wrote back %d bytes, want one page", s.WrittenBack)
	}
}

func TestHostWriteback(t *testing.T) {
	wb, err := HostWriteback()
	if err != nil {
		t.Skipf("no /proc/sys/vm here: %v", err)
	}
	exp, _ := centisecs(expirePath)
	iv, _ := centisecs(intervalPath)
	if exp > 0 && iv > 0 && (wb.Expire != exp || wb.Interval != iv) {
		t.Fatalf("HostWriteback %v, /proc says expire %s, interval %s", wb, exp, iv)
	}
	if (exp == 0 || iv == 0) != wb.None() {
		t.Fatalf("HostWriteback %v with expire %s, interval %s", wb, exp, iv)
	}
}
