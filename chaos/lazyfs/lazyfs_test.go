package lazyfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mount mounts a lazyfs over a fresh backing folder, or skips the test
// where FUSE cannot be mounted.
func mount(t *testing.T) (l *FS, backing, mnt string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("skipping: lazyfs needs FUSE as root: %v", err)
	}
	backing, mnt = t.TempDir(), t.TempDir()
	l, err := Mount(backing, mnt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return l, backing, mnt
}

func writeFile(t *testing.T, path string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnsyncedWriteIsLost(t *testing.T) {
	l, backing, mnt := mount(t)
	data := bytes.Repeat([]byte("x"), 10000)
	writeFile(t, filepath.Join(mnt, "a"), data, false)
	if got := readFile(t, filepath.Join(mnt, "a")); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes before the cut, want %d", len(got), len(data))
	}
	if fi, err := os.Stat(filepath.Join(mnt, "a")); err != nil || fi.Size() != int64(len(data)) {
		t.Fatalf("stat before the cut: %v, %v", fi, err)
	}
	if got := readFile(t, filepath.Join(backing, "a")); len(got) != 0 {
		t.Fatalf("backing file has %d bytes before any sync", len(got))
	}
	if s := l.Stats(); s.DirtyBytes < int64(len(data)) {
		t.Fatalf("stats before the cut: %+v", s)
	}
	s := l.PowerCut()
	if s.LastDropped < int64(len(data)) || s.Cuts != 1 || s.DirtyBytes != 0 {
		t.Fatalf("stats after the cut: %+v", s)
	}
	// Creating the file was a metadata operation: it survives, empty.
	if got := readFile(t, filepath.Join(mnt, "a")); len(got) != 0 {
		t.Fatalf("after the cut the file has %d bytes, want 0", len(got))
	}
}

func TestFsyncedWriteIsKept(t *testing.T) {
	l, backing, mnt := mount(t)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	writeFile(t, filepath.Join(mnt, "a"), data, true)
	l.PowerCut()
	if got := readFile(t, filepath.Join(mnt, "a")); !bytes.Equal(got, data) {
		t.Fatalf("after the cut: %d bytes, want %d", len(got), len(data))
	}
	if got := readFile(t, filepath.Join(backing, "a")); !bytes.Equal(got, data) {
		t.Fatalf("backing file: %d bytes, want %d", len(got), len(data))
	}
}

func TestFdatasyncKeepsPrefix(t *testing.T) {
	l, _, mnt := mount(t)
	path := filepath.Join(mnt, "log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	synced := bytes.Repeat([]byte("s"), 5000)
	if _, err := f.Write(synced); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	// More appends, and an overwrite of synced bytes, never synced.
	if _, err := f.Write(bytes.Repeat([]byte("u"), 7000)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("OVERWRITE"), 100); err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != 12000 {
		t.Fatalf("size before the cut %d, want 12000", fi.Size())
	}
	l.PowerCut()
	f.Close()
	if got := readFile(t, path); !bytes.Equal(got, synced) {
		t.Fatalf("after the cut: %d bytes (%q...), want the %d synced bytes", len(got), got[:min(len(got), 120)], len(synced))
	}
}

func TestTruncateIsVolatileUntilSync(t *testing.T) {
	l, _, mnt := mount(t)
	path := filepath.Join(mnt, "t")
	data := bytes.Repeat([]byte("d"), 3*pageSize+7)
	writeFile(t, path, data, true)
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); !bytes.Equal(got, data[:100]) {
		t.Fatalf("after truncate: %d bytes", len(got))
	}
	l.PowerCut()
	if got := readFile(t, path); !bytes.Equal(got, data) {
		t.Fatalf("unsynced truncate survived the cut: %d bytes, want %d", len(got), len(data))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	l.PowerCut()
	if got := readFile(t, path); !bytes.Equal(got, data[:100]) {
		t.Fatalf("synced truncate lost: %d bytes, want 100", len(got))
	}
}

func TestMetadataIsDurable(t *testing.T) {
	l, backing, mnt := mount(t)
	if err := os.MkdirAll(filepath.Join(mnt, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mnt, "d", "e", "old"), []byte("synced"), true)
	if err := os.Rename(filepath.Join(mnt, "d", "e", "old"), filepath.Join(mnt, "d", "new")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mnt, "gone"), []byte("never synced"), false)
	if err := os.Remove(filepath.Join(mnt, "gone")); err != nil {
		t.Fatal(err)
	}
	l.PowerCut()
	if got := readFile(t, filepath.Join(backing, "d", "new")); string(got) != "synced" {
		t.Fatalf("renamed file: %q", got)
	}
	if _, err := os.Stat(filepath.Join(mnt, "gone")); !os.IsNotExist(err) {
		t.Fatalf("removed file: %v", err)
	}
	// FUSE releases closed files asynchronously.
	for i := 0; l.Stats().Files != 0; i++ {
		if i == 100 {
			t.Fatalf("overlays left with nothing open: %+v", l.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
