package lazyfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by Available's and Mount's errors when this
// machine or process cannot mount FUSE filesystems.
var ErrUnavailable = errors.New("lazyfs: FUSE unavailable")

// Options configure Mount. The zero value is the default.
type Options struct {
	// Debug logs every FUSE request to stderr.
	Debug bool
	// SharedLocks passes file locks through to the backing file
	// (locks.go), so several mounts of one shared directory (nodes of a
	// shared disk) exclude each other; false keeps locks in the kernel,
	// local to this mount, as a disk of one machine does (nothing else
	// sees its files, and no lock request crosses FUSE).
	SharedLocks bool
	// Writeback is the model of the kernel's writeback of unsynced data
	// (HostWriteback reads this machine's); the zero value writes nothing
	// back: only fsync makes data durable.
	Writeback Writeback
	// Now is the clock the writeback model ages files by; nil is
	// time.Now.
	Now func() time.Time
	// AllowOther lets every user and namespace reach the mount
	// (allow_other), not only the mounting process's user: a container's
	// processes reach it through a bind mount (the docker driver).
	AllowOther bool
}

// Stats describe an FS's unsynced data.
type Stats struct {
	// DirtyBytes is what a power cut now would drop, in whole pages.
	DirtyBytes int64
	// Files is the number of files with state in memory (open or dirty).
	Files int
	// Cuts counts PowerCut calls.
	Cuts int
	// LastDropped is what the last PowerCut dropped, in whole pages.
	LastDropped int64
	// LastTorn is how many bytes of the last unsynced write a torn power
	// cut kept (of LastTornOf); 0 when the last cut tore nothing.
	LastTorn, LastTornOf int
	// Injected counts operations an ErrorRule failed.
	Injected int64
	// Stalled counts operations a stall held.
	Stalled int64
	// WrittenBack counts dirty bytes (whole pages) the writeback model
	// made durable.
	WrittenBack int64
}

// FS is a mounted lazyfs. Its methods are safe for concurrent use.
type FS struct {
	backing, mountpoint string
	server              *fuse.Server

	mu          sync.Mutex // guards the fields below and every overlay's refs
	files       map[uint64]*overlay
	cuts        int
	lastDropped int64
	unmounted   bool
	// last is the last write not yet made durable, for a torn cut.
	last             lastWrite
	lastTorn, lastOf int
	faults           injector
	// wb is the writeback model, now its clock; writtenBack counts what
	// it wrote; stopFlusher ends its goroutine.
	wb          Writeback
	now         func() time.Time
	writtenBack int64
	stopFlusher chan struct{}
}

// lastWrite is a copy of one write(2).
type lastWrite struct {
	ov   *overlay
	off  int64
	data []byte
}

// Available says whether Mount can work here: /dev/fuse opens, and we are
// root (mount(2) directly) — an error wrapping ErrUnavailable says why
// not.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	f.Close()
	return nil
}

// Mount serves backing at mountpoint (created if missing) and returns once
// the mount is live.
func Mount(backing, mountpoint string, opt Options) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	var err error
	if backing, err = filepath.Abs(backing); err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	if mountpoint, err = filepath.Abs(mountpoint); err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return nil, fmt.Errorf("lazyfs: mount point: %w", err)
	}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: backing %s: %w", backing, err)
	}
	lr, ok := root.(*fs.LoopbackNode)
	if !ok {
		return nil, fmt.Errorf("lazyfs: loopback root is a %T", root)
	}
	l := &FS{backing: backing, mountpoint: mountpoint, files: map[uint64]*overlay{}, wb: opt.Writeback, now: opt.Now}
	if l.now == nil {
		l.now = time.Now
	}
	zero := time.Duration(0)
	srv, err := fs.Mount(mountpoint, &node{LoopbackNode: lr, lfs: l}, &fs.Options{
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:      "lazyfs:" + backing,
			Name:        "lazyfs",
			DirectMount: true,
			Debug:       opt.Debug,
			// File locks go to the backing file (locks.go) or stay in
			// the kernel.
			EnableLocks: opt.SharedLocks,
			AllowOther:  opt.AllowOther,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s on %s: %w", backing, mountpoint, err)
	}
	l.server = srv
	if !l.wb.None() {
		l.stopFlusher = make(chan struct{})
		go l.flusher(l.stopFlusher)
	}
	return l, nil
}

// Writeback is the FS's writeback model.
func (l *FS) Writeback() Writeback { return l.wb }

// Backing is the directory the FS serves.
func (l *FS) Backing() string { return l.backing }

// Mountpoint is where the FS is mounted.
func (l *FS) Mountpoint() string { return l.mountpoint }

// PowerCut drops every unsynced write and every size known only in
// memory, of every file. Stop the programs using the FS first: a write
// racing the cut may land on either side of it.
func (l *FS) PowerCut() Stats { return l.cut(false, 0) }

// PowerCutTorn is a power cut that tears the last write: of the last
// write(2) not yet made durable, a prefix (at least one byte, not all of
// it; its length drawn from seed) reaches the backing file before the
// rest is dropped, as when power fails while a disk writes the sectors
// of one request. A last write of one byte, or none, tears nothing.
func (l *FS) PowerCutTorn(seed uint64) Stats { return l.cut(true, seed) }

func (l *FS) cut(torn bool, seed uint64) Stats {
	l.mu.Lock()
	l.lastTorn, l.lastOf = 0, 0
	if w := l.last; torn && w.ov != nil && l.files[w.ov.ino] == w.ov && len(w.data) > 1 {
		k := 1 + int(rand.New(rand.NewPCG(seed, seed+1)).Int64N(int64(len(w.data)-1)))
		if _, err := unix.Pwrite(w.ov.fd, w.data[:k], w.off); err == nil {
			l.lastTorn, l.lastOf = k, len(w.data)
		}
	}
	l.last = lastWrite{}
	var dropped int64
	for ino, ov := range l.files {
		dropped += ov.drop()
		if ov.refs == 0 {
			delete(l.files, ino)
			unix.Close(ov.fd)
		}
	}
	l.cuts++
	l.lastDropped = dropped
	l.mu.Unlock()
	return l.Stats()
}

// Stats returns the FS's counters.
func (l *FS) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Files: len(l.files), Cuts: l.cuts, LastDropped: l.lastDropped, LastTorn: l.lastTorn, LastTornOf: l.lastOf, WrittenBack: l.writtenBack}
	l.faults.mu.Lock()
	s.Injected, s.Stalled = l.faults.injected, l.faults.stalled
	l.faults.mu.Unlock()
	for _, ov := range l.files {
		s.DirtyBytes += ov.dirtyBytes()
	}
	return s
}

// Unmount unmounts the FS (lazily if it is busy) and frees what it holds
// in memory; unsynced writes are lost, as in a power cut. It is safe to
// call more than once.
func (l *FS) Unmount() error {
	l.mu.Lock()
	if l.unmounted {
		l.mu.Unlock()
		return nil
	}
	l.unmounted = true
	if l.stopFlusher != nil {
		close(l.stopFlusher)
	}
	l.mu.Unlock()
	l.faults.endStall()
	var errs []error
	if err := l.server.Unmount(); err != nil {
		if err := ForceUnmount(l.mountpoint); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	for ino, ov := range l.files {
		delete(l.files, ino)
		unix.Close(ov.fd)
	}
	l.mu.Unlock()
	return errors.Join(errs...)
}

// ForceUnmount detaches the filesystem mounted at path, also a FUSE mount
// whose server is gone ("transport endpoint is not connected"): umount2
// with MNT_DETACH, and fusermount3 -u -z when that is refused.
func ForceUnmount(path string) error {
	err := syscall.Unmount(path, syscall.MNT_DETACH)
	if err == nil || errors.Is(err, syscall.EINVAL) {
		return nil
	}
	for _, bin := range []string{"fusermount3", "fusermount"} {
		if p, lerr := exec.LookPath(bin); lerr == nil {
			out, ferr := exec.Command(p, "-u", "-z", path).CombinedOutput()
			if ferr == nil {
				return nil
			}
			return fmt.Errorf("lazyfs: unmount %s: %w; %s -u -z: %v: %s", path, err, bin, ferr, out)
		}
	}
	return fmt.Errorf("lazyfs: unmount %s: %w", path, err)
}

// acquire returns the overlay of the backing file at path, with one more
// reference.
func (l *FS) acquire(path string) (*overlay, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ov, ok := l.files[st.Ino]; ok {
		// The overlay's descriptor keeps the inode alive, so its number
		// names the same file.
		unix.Close(fd)
		ov.refs++
		return ov, nil
	}
	ov := newOverlay(st.Ino, fd, st.Size)
	ov.now = l.now
	ov.refs = 1
	l.files[st.Ino] = ov
	return ov, nil
}

// release drops a reference from ov; an overlay nobody holds is
// forgotten once it is clean or its file is deleted.
func (l *FS) release(ov *overlay) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ov.refs--
	l.forgetLocked(ov)
}

// forgetLocked drops ov from the table if nothing needs it; l.mu is held.
func (l *FS) forgetLocked(ov *overlay) {
	if ov.refs > 0 || l.files[ov.ino] != ov {
		return
	}
	ov.mu.Lock()
	keep := !ov.clean()
	ov.mu.Unlock()
	if keep {
		var st unix.Stat_t
		keep = unix.Fstat(ov.fd, &st) != nil || st.Nlink > 0
	}
	if !keep {
		delete(l.files, ov.ino)
		unix.Close(ov.fd)
	}
}

// unlinked is called after ino lost a name: an unreferenced overlay of a
// deleted file goes.
func (l *FS) unlinked(ino uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ov, ok := l.files[ino]; ok {
		l.forgetLocked(ov)
	}
}

// size is the size the program sees of the file with inode number ino,
// if an overlay knows it.
func (l *FS) size(ino uint64) (int64, bool) {
	l.mu.Lock()
	ov, ok := l.files[ino]
	l.mu.Unlock()
	if !ok {
		return 0, false
	}
	return ov.logicalSize(), true
}

// wrote remembers the last write to ov, for a torn cut.
func (l *FS) wrote(ov *overlay, data []byte, off int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last.ov, l.last.off = ov, off
	l.last.data = append(l.last.data[:0], data...)
}

// synced forgets the last write if ov's sync made it durable.
func (l *FS) synced(ov *overlay) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.ov == ov {
		l.last.ov = nil
	}
}
