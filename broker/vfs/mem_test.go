package vfs_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/lossbench/lossbench/broker/vfs"
)

func write(t *testing.T, fs vfs.FS, name, data string, sync bool) vfs.File {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func content(t *testing.T, fs vfs.FS, name string) (string, bool) {
	t.Helper()
	f, err := fs.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestMemCrashKeepsOnlySynced(t *testing.T) {
	fs := vfs.NewCrashableMem()
	if err := fs.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	a := write(t, fs, "/d/a", "synced", true)
	write(t, fs, "/d/never-synced-entry", "data", true)
	if err := fs.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	write(t, fs, "/d/b", "entry not synced", true) // created after SyncDir
	if _, err := a.Write([]byte(" and more")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove("/d/never-synced-entry"); err != nil {
		t.Fatal(err)
	}

	c := fs.Crash()
	if got, _ := content(t, c, "/d/a"); got != "synced" {
		t.Errorf("a = %q, want the synced part", got)
	}
	if _, ok := content(t, c, "/d/b"); ok {
		t.Error("b survived though its directory entry was never synced")
	}
	if got, ok := content(t, c, "/d/never-synced-entry"); !ok || got != "data" {
		t.Errorf("a removal not made durable by SyncDir was kept: %q %v", got, ok)
	}
	// The running filesystem is unchanged by the crash.
	if got, _ := content(t, fs, "/d/a"); got != "synced and more" {
		t.Errorf("live a = %q", got)
	}
}

func TestMemRenameNeedsSyncDir(t *testing.T) {
	fs := vfs.NewCrashableMem()
	fs.MkdirAll("/d", 0o755)
	write(t, fs, "/d/tmp", "x", true)
	fs.SyncDir("/d")
	if err := fs.Rename("/d/tmp", "/d/final"); err != nil {
		t.Fatal(err)
	}
	c := fs.Crash()
	if _, ok := content(t, c, "/d/final"); ok {
		t.Error("rename durable without SyncDir")
	}
	fs.SyncDir("/d")
	c = fs.Crash()
	if got, ok := content(t, c, "/d/final"); !ok || got != "x" {
		t.Errorf("final = %q %v after SyncDir", got, ok)
	}
	if _, ok := content(t, c, "/d/tmp"); ok {
		t.Error("old name survived a synced rename")
	}
}

func TestMemCrashTornKeepsAPrefix(t *testing.T) {
	const synced = "0123456789"
	sawPartial := false
	for seed := uint64(0); seed < 50; seed++ {
		fs := vfs.NewCrashableMem()
		fs.MkdirAll("/d", 0o755)
		f := write(t, fs, "/d/f", synced, true)
		fs.SyncDir("/d")
		f.WriteAt([]byte("abcdef"), 10)
		f.WriteAt([]byte("ghij"), 16)
		got, _ := content(t, fs.CrashTorn(seed), "/d/f")
		full := synced + "abcdefghij"
		if len(got) < len(synced) || got != full[:len(got)] {
			t.Fatalf("seed %d: %q is no prefix of %q keeping the synced part", seed, got, full)
		}
		if len(got) > len(synced) && len(got) < len(full) {
			sawPartial = true
		}
		if again, _ := content(t, fs.CrashTorn(seed), "/d/f"); again != got {
			t.Fatalf("seed %d: CrashTorn not deterministic", seed)
		}
	}
	if !sawPartial {
		t.Error("CrashTorn never kept part of the unsynced writes")
	}
}

func TestMemFileSemantics(t *testing.T) {
	fs := vfs.NewMem()
	if _, err := fs.Create("/missing/f"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create in missing dir: %v", err)
	}
	fs.MkdirAll("/d/e", 0o755)
	f := write(t, fs, "/d/f", "hello", false)
	buf := make([]byte, 10)
	if n, err := f.ReadAt(buf, 3); n != 2 || err != io.EOF {
		t.Errorf("ReadAt past end = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("!"), 8); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, fs, "/d/f"); got != "hello\x00\x00\x00!" {
		t.Errorf("sparse write: %q", got)
	}
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != 2 {
		t.Errorf("size after truncate %d", fi.Size())
	}
	f.Close()
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	ro, _ := fs.Open("/d/f")
	if _, err := ro.Write([]byte("x")); err == nil {
		t.Error("write to a read-only file succeeded")
	}
	if _, err := fs.OpenFile("/d/f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, os.ErrExist) {
		t.Errorf("O_EXCL on existing: %v", err)
	}
	names, _ := fs.List("/d")
	if len(names) != 2 || names[0] != "e" || names[1] != "f" {
		t.Errorf("List = %v", names)
	}
	if err := fs.Remove("/d"); err == nil {
		t.Error("removed a non-empty directory")
	}
}

func testLock(t *testing.T, fs vfs.FS, path string) {
	l, err := fs.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Lock(path); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := fs.Lock(path)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	l2.Close()
}

func TestLockMem(t *testing.T) {
	fs := vfs.NewMem()
	fs.MkdirAll("/d", 0o755)
	testLock(t, fs, "/d/LOCK")
}

func TestLockOS(t *testing.T) { testLock(t, vfs.Default, t.TempDir()+"/LOCK") }

func TestOSFile(t *testing.T) {
	dir := t.TempDir()
	f := write(t, vfs.Default, dir+"/f", "abc", true)
	defer f.Close()
	if _, err := f.WriteAt([]byte("Z"), 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := vfs.Default.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, vfs.Default, dir+"/f"); got != "aZc" {
		t.Errorf("got %q", got)
	}
	names, err := vfs.Default.List(dir)
	if err != nil || len(names) != 1 || names[0] != "f" {
		t.Errorf("List = %v, %v", names, err)
	}
}
