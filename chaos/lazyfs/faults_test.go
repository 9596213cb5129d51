package lazyfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func openRW(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFsyncError: an fsync EIO on files matching the pattern fails that
// fsync and makes nothing durable; writes and reads of the same file, and
// fsyncs of other files, work; once cleared, fsync works again.
func TestFsyncError(t *testing.T) {
	l, backing, mnt := mount(t)
	a, b := openRW(t, filepath.Join(mnt, "seg.log")), openRW(t, filepath.Join(mnt, "other.dat"))
	clear := l.InjectError(ErrorRule{Errno: syscall.EIO, Ops: OpFsync, Pattern: "*.log"})
	if _, err := a.Write([]byte("abc")); err != nil {
		t.Fatalf("write under an fsync rule: %v", err)
	}
	if err := a.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync of seg.log: %v, want EIO", err)
	}
	if got := readFile(t, filepath.Join(backing, "seg.log")); len(got) != 0 {
		t.Fatalf("a failed fsync made %q durable", got)
	}
	if got := readFile(t, filepath.Join(mnt, "seg.log")); string(got) != "abc" {
		t.Fatalf("read under an fsync rule: %q", got)
	}
	if _, err := b.Write([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatalf("fsync of a file the pattern does not match: %v", err)
	}
	if s := l.Stats(); s.Injected != 1 {
		t.Fatalf("injected %d, want 1", s.Injected)
	}
	clear()
	if err := a.Sync(); err != nil {
		t.Fatalf("fsync after clear: %v", err)
	}
	if got := readFile(t, filepath.Join(backing, "seg.log")); string(got) != "abc" {
		t.Fatalf("after a good fsync the backing file has %q", got)
	}
}

// TestWriteAndReadErrors: ENOSPC on write changes no byte; EIO on read
// fails reads only.
func TestWriteAndReadErrors(t *testing.T) {
	l, _, mnt := mount(t)
	path := filepath.Join(mnt, "d", "f")
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, []byte("0123456789"), true)
	f := openRW(t, path)
	clear := l.InjectError(ErrorRule{Errno: syscall.ENOSPC, Ops: OpWrite, Pattern: "d/*"})
	if _, err := f.WriteAt([]byte("XX"), 2); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write: %v, want ENOSPC", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync under a write rule: %v", err)
	}
	if got := readFile(t, path); string(got) != "0123456789" {
		t.Fatalf("a failed write changed the file: %q", got)
	}
	clear()
	l.InjectError(ErrorRule{Errno: syscall.EIO, Ops: OpRead})
	if _, err := f.ReadAt(make([]byte, 4), 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read: %v, want EIO", err)
	}
	if _, err := f.WriteAt([]byte("XX"), 2); err != nil {
		t.Fatalf("write under a read rule: %v", err)
	}
	l.ClearErrors()
	if got := readFile(t, path); string(got) != "01XX456789" {
		t.Fatalf("after clear: %q", got)
	}
}

// TestErrorProbability: a rule with a probability fails some of the
// matching operations, the same ones for the same seed.
func TestErrorProbability(t *testing.T) {
	run := func(seed uint64) (pattern []bool) {
		var in injector
		in.add(ErrorRule{Errno: syscall.EIO, Ops: OpWrite, Probability: 0.3, Seed: seed})
		for i := 0; i < 200; i++ {
			pattern = append(pattern, in.fail(OpWrite, "x") != 0)
			if in.fail(OpRead, "x") != 0 {
				t.Fatal("a write rule failed a read")
			}
		}
		return pattern
	}
	a, b, c := run(1), run(1), run(2)
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("op %d: the same seed decided differently", i)
		}
		if a[i] {
			n++
		}
	}
	if n < 20 || n > 100 {
		t.Fatalf("%d of 200 failed with p=0.3", n)
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 1 and 2 failed the same operations")
	}
}

// TestStall: every operation waits while the stall lasts, then completes
// with nothing lost; a stall with a duration ends by itself.
func TestStall(t *testing.T) {
	l, _, mnt := mount(t)
	path := filepath.Join(mnt, "f")
	f := openRW(t, path)
	l.Stall(time.Hour)
	done := make(chan error, 1)
	go func() {
		if _, err := f.Write([]byte("data")); err != nil {
			done <- err
			return
		}
		done <- f.Sync()
	}()
	for l.Stats().Stalled == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("a write went through a stall: %v", err)
	default:
	}
	l.Unstall()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.PowerCut()
	if got := readFile(t, path); string(got) != "data" {
		t.Fatalf("after the stall: %q", got)
	}
	before := l.Stats().Stalled
	l.Stall(50 * time.Millisecond)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if l.Stats().Stalled == before {
		t.Fatal("a stat did not wait for the stall")
	}
}

// TestPowerCutTorn: a torn cut keeps the synced data and a strict,
// non-empty prefix of the last unsynced write, and no earlier unsynced
// write.
func TestPowerCutTorn(t *testing.T) {
	l, backing, mnt := mount(t)
	path := filepath.Join(mnt, "log")
	f := openRW(t, path)
	synced := bytes.Repeat([]byte("s"), 100)
	last := bytes.Repeat([]byte("L"), 3*pageSize)
	if _, err := f.Write(synced); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("earlier unsynced")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(last); err != nil {
		t.Fatal(err)
	}
	s := l.PowerCutTorn(7)
	if s.LastTornOf != len(last) || s.LastTorn < 1 || s.LastTorn >= len(last) {
		t.Fatalf("torn %d of %d, want a strict prefix of %d", s.LastTorn, s.LastTornOf, len(last))
	}
	got := readFile(t, filepath.Join(backing, "log"))
	off := len(synced) + len("earlier unsynced")
	if len(got) != off+s.LastTorn || !bytes.Equal(got[:len(synced)], synced) || !bytes.Equal(got[off:], last[:s.LastTorn]) {
		t.Fatalf("backing file after a torn cut: %d bytes, want %d synced, a hole and %d of the last write", len(got), len(synced), s.LastTorn)
	}
	if bytes.Contains(got, []byte("earlier")) {
		t.Fatal("a torn cut kept an earlier unsynced write")
	}
	// Nothing unsynced left: a second torn cut tears nothing.
	if s := l.PowerCutTorn(7); s.LastTorn != 0 {
		t.Fatalf("second cut tore %d bytes", s.LastTorn)
	}
}

// TestCorrupt flips every bit of exactly one block of one matching file.
func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3*BlockSize+10)
	for i := range data {
		data[i] = byte(i)
	}
	for _, n := range []string{"a.log", "b.log", "keep.dat"} {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Corrupt(dir, "*.log", 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Block != 1 || c.Offset != BlockSize || c.Len != BlockSize {
		t.Fatalf("%v", c)
	}
	for _, n := range []string{"a.log", "b.log", "keep.dat"} {
		got := readFile(t, filepath.Join(dir, n))
		if n != c.File {
			if !bytes.Equal(got, data) {
				t.Fatalf("%s changed, %s was chosen", n, c.File)
			}
			continue
		}
		for i := range got {
			in := int64(i) >= c.Offset && int64(i) < c.Offset+c.Len
			if (got[i] == data[i]) == in {
				t.Fatalf("%s byte %d: %x, was %x (in the block: %v)", n, i, got[i], data[i], in)
			}
			if in && got[i] != ^data[i] {
				t.Fatalf("byte %d not flipped", i)
			}
		}
	}
	// A block chosen by the seed stays within the file.
	c2, err := Corrupt(dir, "keep.dat", -1, 11)
	if err != nil || c2.Offset+c2.Len > int64(len(data)) {
		t.Fatalf("%v %v", c2, err)
	}
	if _, err := Corrupt(dir, "keep.dat", 4, 0); err == nil {
		t.Fatal("a block past the end was accepted")
	}
	if _, err := Corrupt(dir, "*.none", -1, 0); !errors.Is(err, ErrNoFile) {
		t.Fatalf("no match: %v", err)
	}
}
