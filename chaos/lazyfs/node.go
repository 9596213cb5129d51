package lazyfs

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// node is a loopback node whose regular files are served through their
// overlays; directories and metadata operations stay the loopback's.
type node struct {
	*fs.LoopbackNode
	lfs *FS
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
	_ fs.NodeRenamer     = (*node)(nil)
)

// WrapChild makes every node the loopback creates one of ours.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, lfs: n.lfs}
	}
	return ops
}

// backing is the node's path in the backing directory.
func (n *node) backing() string { return filepath.Join(n.RootData.Path, n.Path(nil)) }

func (n *node) regular() bool { return n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFREG }

// patchSize replaces a stat's size with the overlay's, if there is one.
func (n *node) patchSize(a *fuse.Attr) {
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return
	}
	if sz, ok := n.lfs.size(a.Ino); ok {
		a.Size = uint64(sz)
	}
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return nil, errno
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		n.patchSize(&out.Attr)
	}
	return ch, errno
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	if h, ok := f.(*handle); ok {
		return h.Getattr(ctx, out)
	}
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	if errno == 0 {
		n.patchSize(&out.Attr)
	}
	return errno
}

// Setattr changes a regular file's size in its overlay only; the rest
// (mode, owner, times) goes to the backing file at once.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	if sz, ok := in.GetSize(); ok && n.regular() {
		if h, ok := f.(*handle); ok {
			h.ov.truncate(int64(sz))
		} else {
			ov, err := n.lfs.acquire(n.backing())
			if err != nil {
				return fs.ToErrno(err)
			}
			ov.truncate(int64(sz))
			n.lfs.release(ov)
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	if errno == 0 {
		n.patchSize(&out.Attr)
	}
	return errno
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return nil, 0, errno
	}
	if !n.regular() {
		return n.LoopbackNode.Open(ctx, flags)
	}
	ov, err := n.lfs.acquire(n.backing())
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		ov.truncate(0)
	}
	return newHandle(n.lfs, ov, n.Path(nil), flags), fuse.FOPEN_DIRECT_IO, 0
}

// Create makes the file in the backing directory (a durable metadata
// operation) and serves it through its overlay; O_TRUNC of an existing
// file is an overlay truncation.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return nil, nil, 0, errno
	}
	ch, fh, _, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if r, ok := fh.(fs.FileReleaser); ok {
		r.Release(ctx)
	}
	ov, err := n.lfs.acquire(filepath.Join(n.backing(), name))
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		ov.truncate(0)
	}
	out.Attr.Size = uint64(ov.logicalSize())
	return ch, newHandle(n.lfs, ov, filepath.Join(n.Path(nil), name), flags), fuse.FOPEN_DIRECT_IO, 0
}

// ino is the inode number of path in the backing directory, 0 if none.
func ino(path string) uint64 {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	victim := ino(filepath.Join(n.backing(), name))
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 && victim != 0 {
		n.lfs.unlinked(victim)
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := n.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	var victim uint64
	if np, ok := newParent.(*node); ok {
		victim = ino(filepath.Join(np.backing(), newName))
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 && victim != 0 {
		n.lfs.unlinked(victim)
	}
	return errno
}

// handle is an open regular file: its I/O goes to the file's overlay.
type handle struct {
	lfs *FS
	ov  *overlay
	// path is the file's path relative to the mount, as opened: what an
	// ErrorRule's pattern matches.
	path string
	// sync and dsync: opened O_SYNC or O_DSYNC, every write syncs.
	sync, dsync bool
	// access is the O_ACCMODE it was opened with: its lock descriptor's,
	// so a write lock needs a handle open for writing, as fcntl(2) says.
	access int
	// lockFd is the handle's own descriptor of the backing file for file
	// locks (locks.go), 0 until the first lock request.
	lockMu sync.Mutex
	lockFd int
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
	_ fs.FileAllocater = (*handle)(nil)
)

func newHandle(l *FS, ov *overlay, path string, flags uint32) *handle {
	return &handle{lfs: l, ov: ov, path: path,
		sync:   flags&syscall.O_SYNC == syscall.O_SYNC,
		dsync:  flags&syscall.O_DSYNC != 0,
		access: int(flags) & syscall.O_ACCMODE}
}

// fault holds the operation while a stall lasts, then returns the
// errno an error rule injects into op, or 0.
func (h *handle) fault(ctx context.Context, op Op) syscall.Errno {
	if errno := h.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	return h.lfs.faults.fail(op, h.path)
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := h.fault(ctx, OpRead); errno != 0 {
		return nil, errno
	}
	n, err := h.ov.read(dest, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := h.fault(ctx, OpWrite); errno != 0 {
		return 0, errno
	}
	if h.dsync {
		// The write and its sync are one request: fail it whole.
		if errno := h.lfs.faults.fail(OpFsync, h.path); errno != 0 {
			return 0, errno
		}
	}
	if err := h.ov.write(data, off); err != nil {
		return 0, fs.ToErrno(err)
	}
	h.lfs.wrote(h.ov, data, off)
	if h.dsync {
		if err := h.ov.sync(!h.sync); err != nil {
			return 0, fs.ToErrno(err)
		}
		h.lfs.synced(h.ov)
	}
	return uint32(len(data)), 0
}

// Fsync makes the whole file durable, for fsync and fdatasync alike
// (FUSE_FSYNC_FDATASYNC in flags only chooses the backing call).
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := h.fault(ctx, OpFsync); errno != 0 {
		return errno
	}
	if err := h.ov.sync(flags&1 != 0); err != nil {
		return fs.ToErrno(err)
	}
	h.lfs.synced(h.ov)
	return 0
}

// Flush (close(2)) persists nothing, like a page cache.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return h.lfs.faults.wait(ctx) }

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.closeLock()
	h.lfs.release(h.ov)
	return 0
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if errno := h.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	var st syscall.Stat_t
	if err := h.ov.stat(&st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	return 0
}

// Allocate supports plain fallocate and FALLOC_FL_KEEP_SIZE, both applied
// to the backing file at once (an allocation of zeros loses nothing).
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	if mode != 0 && mode != unix.FALLOC_FL_KEEP_SIZE {
		return syscall.ENOTSUP
	}
	if errno := h.lfs.faults.wait(ctx); errno != 0 {
		return errno
	}
	return fs.ToErrno(h.ov.allocate(int64(off), int64(size), mode))
}
