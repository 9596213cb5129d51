package lazyfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func tryFlock(t *testing.T, path string) (*os.File, error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// TestFlockAcrossViews: two lazyfs mounts over one backing directory (two
// nodes' views of a shared disk) and the backing directory itself share
// flock(2) locks, as brokers on one SAN do; two opens on one mount are
// two owners; closing releases; a stall holds lock requests.
func TestFlockAcrossViews(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: lazyfs needs FUSE as root: %v", err)
	}
	backing := t.TempDir()
	var views [2]string
	var fss [2]*FS
	for i := range views {
		views[i] = t.TempDir()
		l, err := Mount(backing, views[i], Options{SharedLocks: true})
		if err != nil {
			t.Fatal(err)
		}
		fss[i] = l
		t.Cleanup(func() { l.Unmount() })
	}
	a, err := tryFlock(t, filepath.Join(views[0], "shared.lock"))
	if err != nil {
		t.Fatalf("first lock on view 0: %v", err)
	}
	for _, p := range []string{filepath.Join(views[1], "shared.lock"), filepath.Join(backing, "shared.lock"), filepath.Join(views[0], "shared.lock")} {
		if f, err := tryFlock(t, p); !errors.Is(err, unix.EWOULDBLOCK) {
			if f != nil {
				f.Close()
			}
			t.Fatalf("lock through %s while view 0 holds it: %v, want EWOULDBLOCK", p, err)
		}
	}
	a.Close()
	var b *os.File
	for deadline := time.Now().Add(30 * time.Second); b == nil; time.Sleep(10 * time.Millisecond) {
		// The release reaches the FUSE server asynchronously.
		if b, err = tryFlock(t, filepath.Join(views[1], "shared.lock")); err != nil && time.Now().After(deadline) {
			t.Fatalf("view 1 cannot lock after view 0 closed: %v", err)
		}
	}
	defer b.Close()
	// A stall of view 1 holds its lock requests; view 0 is not held.
	fss[1].Stall(time.Hour)
	done := make(chan error, 1)
	go func() {
		f, err := tryFlock(t, filepath.Join(views[1], "other.lock"))
		if f != nil {
			f.Close() // an open file left on a mount hangs the test binary's exit
		}
		done <- err
	}()
	if f, err := tryFlock(t, filepath.Join(views[0], "third.lock")); err != nil {
		t.Fatalf("view 0 during view 1's stall: %v", err)
	} else {
		f.Close()
	}
	select {
	case err := <-done:
		t.Fatalf("a lock request through a stalled view finished: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	fss[1].Unstall()
	if err := <-done; err != nil {
		t.Fatalf("lock after the stall: %v", err)
	}
}

// TestRecordLockAcrossViews: an fcntl(2) write lock (what Java's
// FileChannel.tryLock takes, ActiveMQ's KahaDB lock among them) through
// one view of a shared disk excludes the other view.
func TestRecordLockAcrossViews(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: lazyfs needs FUSE as root: %v", err)
	}
	backing := t.TempDir()
	var views [2]string
	for i := range views {
		views[i] = t.TempDir()
		l, err := Mount(backing, views[i], Options{SharedLocks: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Unmount() })
	}
	lock := func(path string, flag int) error {
		f, err := os.OpenFile(path, flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		lk := unix.Flock_t{Type: unix.F_WRLCK, Len: 1}
		return unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
	}
	if err := lock(filepath.Join(views[0], "kahadb.lock"), os.O_CREATE|os.O_RDWR); err != nil {
		t.Fatalf("write lock through view 0: %v", err)
	}
	if err := lock(filepath.Join(views[1], "kahadb.lock"), os.O_RDWR); !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
		t.Fatalf("write lock through view 1 while view 0 holds it: %v, want EAGAIN", err)
	}
	if err := lock(filepath.Join(views[1], "other.lock"), os.O_CREATE|os.O_RDWR); err != nil {
		t.Fatalf("write lock on another file through view 1: %v", err)
	}
}
