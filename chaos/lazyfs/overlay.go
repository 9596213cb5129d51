package lazyfs

import (
	"math"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pageSize is the granularity of the overlay's dirty pages.
const pageSize = 4096

// noZero is overlay.zeroFrom when no truncation is pending.
const noZero = math.MaxInt64

// overlay is the unsynced state of one backing file: its dirty pages and
// the size the program sees. It owns a read-write descriptor of the
// backing file, which keeps the inode (and so its number, the overlay's
// key) alive for as long as the overlay exists.
type overlay struct {
	ino uint64
	fd  int

	mu    sync.Mutex
	refs  int              // open file handles
	size  int64            // the file's size as the program sees it
	disk  int64            // the backing file's size
	pages map[int64][]byte // page index → pageSize bytes, zero past size
	// zeroFrom: backing bytes at or after it are stale (a truncation not
	// yet synced) and read as zeros. Invariant: size < disk implies
	// zeroFrom <= size.
	zeroFrom int64
	// dirtied is when the overlay last went from clean to dirty (zero
	// while clean): the age the writeback model goes by.
	dirtied time.Time
	// now is the FS's clock (time.Now when nil).
	now func() time.Time
}

func newOverlay(ino uint64, fd int, size int64) *overlay {
	return &overlay{ino: ino, fd: fd, size: size, disk: size, pages: map[int64][]byte{}, zeroFrom: noZero}
}

// markDirty notes that the overlay changed; ov.mu is held.
func (ov *overlay) markDirty() {
	if !ov.dirtied.IsZero() || ov.clean() {
		return
	}
	if ov.now != nil {
		ov.dirtied = ov.now()
	} else {
		ov.dirtied = time.Now()
	}
}

// limit is where backing data stops counting; ov.mu is held.
func (ov *overlay) limit() int64 { return min(ov.disk, ov.zeroFrom) }

// readBacking fills p with the backing file's bytes at off, zeros where
// the backing file has none or they are stale; ov.mu is held.
func (ov *overlay) readBacking(p []byte, off int64) error {
	n := 0
	if lim := ov.limit(); off < lim {
		want := int(min(int64(len(p)), lim-off))
		for n < want {
			m, err := unix.Pread(ov.fd, p[n:want], off+int64(n))
			if err != nil {
				if err == unix.EINTR {
					continue
				}
				return err
			}
			if m == 0 {
				break
			}
			n += m
		}
	}
	clear(p[n:])
	return nil
}

// read copies the file's bytes at off into p and returns how many there
// are (short at the end of the file).
func (ov *overlay) read(p []byte, off int64) (int, error) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if off >= ov.size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), ov.size-off)]
	pos := 0
	for pos < len(p) {
		at := off + int64(pos)
		idx := at / pageSize
		in := int(at % pageSize)
		if pg, ok := ov.pages[idx]; ok {
			pos += copy(p[pos:], pg[in:])
			continue
		}
		// A run of clean pages is one read of the backing file.
		end := pos + pageSize - in
		for end < len(p) {
			if _, ok := ov.pages[(off+int64(end))/pageSize]; ok {
				break
			}
			end += pageSize
		}
		end = min(end, len(p))
		if err := ov.readBacking(p[pos:end], at); err != nil {
			return pos, err
		}
		pos = end
	}
	return len(p), nil
}

// grow notes that the size goes from ov.size to n > ov.size: the bytes in
// between read as zeros; ov.mu is held.
func (ov *overlay) grow(n int64) {
	if ov.size < ov.disk {
		ov.zeroFrom = min(ov.zeroFrom, ov.size)
	}
	ov.size = n
}

// write puts p at off into the overlay.
func (ov *overlay) write(p []byte, off int64) error {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if end := off + int64(len(p)); end > ov.size {
		ov.grow(end)
	}
	for pos := 0; pos < len(p); {
		at := off + int64(pos)
		idx := at / pageSize
		in := int(at % pageSize)
		pg, ok := ov.pages[idx]
		if !ok {
			pg = make([]byte, pageSize)
			if in != 0 || len(p)-pos < pageSize {
				if err := ov.readBacking(pg, idx*pageSize); err != nil {
					return err
				}
			}
			ov.pages[idx] = pg
		}
		pos += copy(pg[in:], p[pos:])
	}
	ov.markDirty()
	return nil
}

// truncate sets the file's size to n.
func (ov *overlay) truncate(n int64) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	switch {
	case n > ov.size:
		ov.grow(n)
	case n < ov.size:
		for idx, pg := range ov.pages {
			if start := idx * pageSize; start >= n {
				delete(ov.pages, idx)
			} else if n-start < pageSize {
				clear(pg[n-start:])
			}
		}
		ov.zeroFrom = min(ov.zeroFrom, n)
		ov.size = n
	}
	ov.markDirty()
}

// allocate extends the backing file with fallocate(2); mode is 0 or
// FALLOC_FL_KEEP_SIZE.
func (ov *overlay) allocate(off, n int64, mode uint32) error {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if err := unix.Fallocate(ov.fd, mode, off, n); err != nil {
		return err
	}
	if mode == 0 {
		ov.disk = max(ov.disk, off+n)
		if off+n > ov.size {
			ov.grow(off + n)
		}
	}
	ov.markDirty()
	return nil
}

// dirtyBytes is the overlay's dirty pages in bytes.
func (ov *overlay) dirtyBytes() int64 {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	return int64(len(ov.pages)) * pageSize
}

// clean reports whether the overlay holds nothing the backing file lacks;
// ov.mu is held.
func (ov *overlay) clean() bool {
	return len(ov.pages) == 0 && ov.size == ov.disk && ov.zeroFrom == noZero
}

// sync writes the dirty pages and the size to the backing file and
// fsyncs it (fdatasync when datasync). The pages are handed to the
// backing filesystem under the lock; its fsync runs outside, so writes
// to the file are not held up by the disk.
func (ov *overlay) sync(datasync bool) error {
	if err := ov.writeBack(); err != nil {
		return err
	}
	if datasync {
		return unix.Fdatasync(ov.fd)
	}
	return unix.Fsync(ov.fd)
}

func (ov *overlay) writeBack() error {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	if ov.clean() {
		return nil
	}
	// Stale backing bytes go first, so pages are written over zeros.
	if ov.zeroFrom < ov.disk {
		if err := unix.Ftruncate(ov.fd, ov.zeroFrom); err != nil {
			return err
		}
		ov.disk = ov.zeroFrom
	}
	idxs := make([]int64, 0, len(ov.pages))
	for idx := range ov.pages {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	var buf []byte
	var bufOff int64
	flush := func() error {
		for len(buf) > 0 {
			n, err := unix.Pwrite(ov.fd, buf, bufOff)
			if err != nil {
				if err == unix.EINTR {
					continue
				}
				return err
			}
			buf, bufOff = buf[n:], bufOff+int64(n)
		}
		return nil
	}
	for _, idx := range idxs {
		start := idx * pageSize
		pg := ov.pages[idx][:min(pageSize, ov.size-start)]
		if len(buf) > 0 && bufOff+int64(len(buf)) == start && len(buf) < 1<<20 {
			buf = append(buf, pg...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		buf, bufOff = append(make([]byte, 0, 1<<20), pg...), start
	}
	if err := flush(); err != nil {
		return err
	}
	if err := unix.Ftruncate(ov.fd, ov.size); err != nil {
		return err
	}
	clear(ov.pages)
	ov.disk, ov.zeroFrom = ov.size, noZero
	ov.dirtied = time.Time{}
	return nil
}

// writeBackIfOlder writes the overlay back (without fsync) if it was
// dirtied at or before t, and returns the dirty bytes it wrote, in whole
// pages.
func (ov *overlay) writeBackIfOlder(t time.Time) (int64, error) {
	ov.mu.Lock()
	if ov.dirtied.IsZero() || ov.dirtied.After(t) {
		ov.mu.Unlock()
		return 0, nil
	}
	n := int64(len(ov.pages)) * pageSize
	ov.mu.Unlock()
	// Another write between the unlock and writeBack only makes it write
	// more, as the kernel's flusher would.
	if err := ov.writeBack(); err != nil {
		return 0, err
	}
	return n, nil
}

// drop forgets everything unsynced and returns the dirty bytes dropped.
func (ov *overlay) drop() int64 {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	n := int64(len(ov.pages)) * pageSize
	clear(ov.pages)
	var st unix.Stat_t
	if unix.Fstat(ov.fd, &st) == nil {
		ov.disk = st.Size
	}
	ov.size, ov.zeroFrom = ov.disk, noZero
	ov.dirtied = time.Time{}
	return n
}

// stat fills st from the backing file, with the size the program sees.
func (ov *overlay) stat(st *syscall.Stat_t) error {
	if err := syscall.Fstat(ov.fd, st); err != nil {
		return err
	}
	ov.mu.Lock()
	st.Size = ov.size
	ov.mu.Unlock()
	return nil
}

// logicalSize is the size the program sees.
func (ov *overlay) logicalSize() int64 {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	return ov.size
}
