package lazyfs

import (
	"context"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// With Options.SharedLocks, file locks (flock(2) and fcntl(2) record
// locks) pass through to the backing file: each open file handle locks
// through a descriptor of its own on the backing file (a new open file
// description, so two handles are two lock owners, as two opens are for
// flock(2) on a real filesystem; fcntl(2) record locks there belong to
// the process, so two opens of one file by one process do not exclude
// each other, here they do). Two lazyfs mounts over one backing
// directory (two nodes' views of a shared disk) therefore exclude each
// other as brokers on one SAN do, and so does a program using the
// backing directory directly. A stall holds lock requests like every
// other operation.

var (
	_ fs.FileGetlker  = (*handle)(nil)
	_ fs.FileSetlker  = (*handle)(nil)
	_ fs.FileSetlkwer = (*handle)(nil)
)

// OFD lock commands (fcntl(2), Linux).
const (
	ofdGetlk  = 36
	ofdSetlk  = 37
	ofdSetlkw = 38
)

// lockFD returns the handle's own descriptor of the backing file, opened
// on first use with the handle's access mode (a read-only descriptor
// cannot take an fcntl(2) write lock: EBADF).
func (h *handle) lockFD() (int, syscall.Errno) {
	h.lockMu.Lock()
	defer h.lockMu.Unlock()
	if h.lockFd > 0 {
		return h.lockFd, 0
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(h.ov.fd), h.access|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fs.ToErrno(err)
	}
	h.lockFd = fd
	return fd, 0
}

// closeLock closes the lock descriptor, releasing its locks.
func (h *handle) closeLock() {
	h.lockMu.Lock()
	defer h.lockMu.Unlock()
	if h.lockFd > 0 {
		unix.Close(h.lockFd)
		h.lockFd = 0
	}
}

func (h *handle) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	if errno := h.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	fd, errno := h.lockFD()
	if errno != 0 {
		return errno
	}
	var flk syscall.Flock_t
	lk.ToFlockT(&flk)
	errno = fs.ToErrno(syscall.FcntlFlock(uintptr(fd), ofdGetlk, &flk))
	out.FromFlockT(&flk)
	return errno
}

func (h *handle) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return h.setLock(ctx, lk, flags, false)
}

// Setlkw waits for the lock: the backing call is tried without blocking
// until it succeeds or the request is interrupted (a blocked flock(2)
// could not be cancelled).
func (h *handle) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	for {
		errno := h.setLock(ctx, lk, flags, true)
		if errno != syscall.EWOULDBLOCK && errno != syscall.EAGAIN && errno != syscall.EACCES {
			return errno
		}
		select {
		case <-ctx.Done():
			return syscall.EINTR
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// setLock takes or releases lk without blocking; wait only says the
// caller retries.
func (h *handle) setLock(ctx context.Context, lk *fuse.FileLock, flags uint32, wait bool) syscall.Errno {
	if errno := h.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	fd, errno := h.lockFD()
	if errno != 0 {
		return errno
	}
	if flags&fuse.FUSE_LK_FLOCK != 0 {
		var op int
		switch lk.Typ {
		case syscall.F_RDLCK:
			op = syscall.LOCK_SH
		case syscall.F_WRLCK:
			op = syscall.LOCK_EX
		case syscall.F_UNLCK:
			op = syscall.LOCK_UN
		default:
			return syscall.EINVAL
		}
		return fs.ToErrno(syscall.Flock(fd, op|syscall.LOCK_NB))
	}
	var flk syscall.Flock_t
	lk.ToFlockT(&flk)
	return fs.ToErrno(syscall.FcntlFlock(uintptr(fd), ofdSetlk, &flk))
}
