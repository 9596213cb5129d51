package errorfs_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/lossbench/lossbench/broker/vfs"
	"github.com/lossbench/lossbench/broker/vfs/errorfs"
)

func setup(t *testing.T, inj errorfs.Injector) (vfs.FS, vfs.File, *vfs.MemFS) {
	t.Helper()
	mem := vfs.NewMem()
	mem.MkdirAll("/d", 0o755)
	fs := errorfs.Wrap(mem, inj)
	f, err := fs.Create("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	return fs, f, mem
}

func size(t *testing.T, mem *vfs.MemFS) int64 {
	fi, err := mem.Stat("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestOnNth(t *testing.T) {
	_, f, _ := setup(t, errorfs.OnNth(2, errorfs.ErrInjected, errorfs.OpSync))
	for i, want := range []bool{false, true, false} {
		if err := f.Sync(); (err != nil) != want || want && !errors.Is(err, errorfs.ErrInjected) {
			t.Errorf("sync %d: %v", i+1, err)
		}
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Errorf("write is not a sync: %v", err)
	}
}

func TestFromNth(t *testing.T) {
	_, f, _ := setup(t, errorfs.FromNth(2, errorfs.ErrInjected, errorfs.OpWrite))
	for i, want := range []bool{false, true, true, true} {
		if _, err := f.Write([]byte("x")); (err != nil) != want {
			t.Errorf("write %d: %v", i+1, err)
		}
	}
}

func TestENOSPCAfter(t *testing.T) {
	_, f, mem := setup(t, errorfs.ENOSPCAfter(10))
	if _, err := f.Write([]byte("123456")); err != nil {
		t.Fatal(err)
	}
	n, err := f.Write([]byte("abcdef"))
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("crossing write = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("z"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk = %v", err)
	}
	if got := size(t, mem); got != 10 {
		t.Fatalf("size %d, want 10", got)
	}
}

func TestTornWrite(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		_, f, mem := setup(t, errorfs.TornWrite(2, seed))
		f.Write([]byte("aaaa"))
		n, err := f.Write([]byte("bbbbbbbb"))
		if !errors.Is(err, syscall.EIO) || n < 0 || n > 8 || size(t, mem) != int64(4+n) {
			t.Fatalf("seed %d: torn write = %d, %v, size %d", seed, n, err, size(t, mem))
		}
		if _, err := f.Write([]byte("c")); err != nil {
			t.Fatalf("write after the torn one: %v", err)
		}
	}
}

func TestAnyOnPathSwitchRecorder(t *testing.T) {
	rec := &errorfs.Recorder{}
	sw := &errorfs.Switch{Injector: errorfs.OnPath(func(p string) bool { return strings.HasSuffix(p, ".log") },
		errorfs.FromNth(1, errorfs.ErrInjected, errorfs.OpWrite))}
	mem := vfs.NewMem()
	mem.MkdirAll("/d", 0o755)
	fs := errorfs.Wrap(mem, errorfs.Any(sw, rec))
	log, _ := fs.Create("/d/x.log")
	other, _ := fs.Create("/d/x.txt")
	if _, err := log.Write([]byte("a")); err != nil {
		t.Fatalf("switch off: %v", err)
	}
	sw.On()
	if _, err := log.Write([]byte("a")); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("switch on: %v", err)
	}
	if _, err := other.Write([]byte("a")); err != nil {
		t.Fatalf("other path: %v", err)
	}
	if n := rec.Count(errorfs.OpWrite); n != 3 {
		t.Fatalf("recorder saw %d writes, want 3", n)
	}
}

func TestRandomIsSeeded(t *testing.T) {
	run := func() []bool {
		_, f, _ := setup(t, errorfs.Random(0.3, 7, errorfs.ErrInjected, errorfs.OpSync))
		var out []bool
		for i := 0; i < 50; i++ {
			out = append(out, f.Sync() != nil)
		}
		return out
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different faults")
		}
		if a[i] {
			fails++
		}
	}
	if fails == 0 || fails == 50 {
		t.Fatalf("%d of 50 failed at p=0.3", fails)
	}
}
