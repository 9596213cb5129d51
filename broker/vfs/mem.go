package vfs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS that models what survives a crash: it tracks,
// per file, the contents made durable by Sync and the writes since then,
// and per directory, the entries made durable by SyncDir. Crash returns
// what a machine would find after a power cut at that instant.
//
// Directories themselves are durable as soon as MkdirAll returns; file
// entries (create, rename, remove) only after SyncDir of their directory;
// file contents only after Sync of the file.
//
// A MemFS is safe for concurrent use; every operation is atomic with
// respect to Crash.
type MemFS struct {
	mu      sync.Mutex
	files   map[string]*inode // the namespace as the running program sees it
	durable map[string]*inode // the namespace after SyncDir
	dirs    map[string]bool
	locks   map[string]bool
}

type inode struct {
	data    []byte  // current contents
	synced  []byte  // contents as of the last Sync
	pending []memOp // writes and truncates since the last Sync, in order
	modTime time.Time
}

type memOp struct {
	off      int64
	data     []byte
	truncate bool // if set, a truncate to off
}

// NewMem returns an empty in-memory filesystem. It is the same as
// NewCrashableMem; the two names say what the caller means.
func NewMem() *MemFS { return NewCrashableMem() }

// NewCrashableMem returns an empty in-memory filesystem with a crash model.
func NewCrashableMem() *MemFS {
	return &MemFS{
		files:   make(map[string]*inode),
		durable: make(map[string]*inode),
		dirs:    map[string]bool{"/": true, ".": true},
		locks:   make(map[string]bool),
	}
}

// Crash returns a new filesystem holding only what was durable: the
// entries made durable by SyncDir and, for each, the contents as of its
// last Sync. The receiver is left as it was and stays usable, so a test may
// crash a copy while the program under test is still writing.
func (fs *MemFS) Crash() *MemFS { return fs.crash(nil) }

// CrashTorn is Crash, but each file also keeps a random prefix of its
// unsynced writes, the last of them possibly cut short: a power cut after
// the kernel wrote some of the page cache back in order. seed makes it
// replayable.
func (fs *MemFS) CrashTorn(seed uint64) *MemFS {
	return fs.crash(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
}

func (fs *MemFS) crash(rng *rand.Rand) *MemFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := NewCrashableMem()
	for d := range fs.dirs {
		n.dirs[d] = true
	}
	copied := make(map[*inode]*inode)
	names := make([]string, 0, len(fs.durable))
	for name := range fs.durable {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic use of rng
	for _, name := range names {
		ino := fs.durable[name]
		c, ok := copied[ino]
		if !ok {
			data := append([]byte(nil), ino.synced...)
			if rng != nil && len(ino.pending) > 0 {
				k := rng.IntN(len(ino.pending) + 1)
				for i, op := range ino.pending[:k] {
					if i == k-1 && !op.truncate && len(op.data) > 0 {
						op.data = op.data[:rng.IntN(len(op.data)+1)]
					}
					data = applyOp(data, op)
				}
			}
			c = &inode{data: data, synced: append([]byte(nil), data...), modTime: ino.modTime}
			copied[ino] = c
		}
		n.files[name] = c
		n.durable[name] = c
	}
	return n
}

func applyOp(data []byte, op memOp) []byte {
	if op.truncate {
		return resize(data, op.off)
	}
	end := op.off + int64(len(op.data))
	if end > int64(len(data)) {
		data = resize(data, end)
	}
	copy(data[op.off:], op.data)
	return data
}

func resize(data []byte, size int64) []byte {
	if size <= int64(len(data)) {
		return data[:size]
	}
	if size <= int64(cap(data)) {
		old := len(data)
		data = data[:size]
		clear(data[old:])
		return data
	}
	n := make([]byte, size, max(size, 2*int64(cap(data))))
	copy(n, data)
	return n
}

func clean(name string) string { return filepath.Clean(name) }

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// OpenFile implements FS.
func (fs *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dirs[name] {
		return nil, pathErr("open", name, syscall.EISDIR)
	}
	if !fs.dirs[filepath.Dir(name)] {
		return nil, pathErr("open", name, syscall.ENOENT)
	}
	ino, ok := fs.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, syscall.EEXIST)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, syscall.ENOENT)
	case !ok:
		ino = &inode{modTime: time.Now()}
		fs.files[name] = ino
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	if flag&os.O_TRUNC != 0 && acc != os.O_RDONLY {
		fs.truncateLocked(ino, 0)
	}
	return &memFile{fs: fs, ino: ino, name: name, flag: flag}, nil
}

// Create implements FS.
func (fs *MemFS) Create(name string) (File, error) {
	return fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// Open implements FS.
func (fs *MemFS) Open(name string) (File, error) { return fs.OpenFile(name, os.O_RDONLY, 0) }

// Remove implements FS.
func (fs *MemFS) Remove(name string) error {
	name = clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.files[name]; ok {
		delete(fs.files, name)
		return nil
	}
	if fs.dirs[name] {
		for n := range fs.files {
			if filepath.Dir(n) == name {
				return pathErr("remove", name, syscall.ENOTEMPTY)
			}
		}
		for d := range fs.dirs {
			if d != name && filepath.Dir(d) == name {
				return pathErr("remove", name, syscall.ENOTEMPTY)
			}
		}
		delete(fs.dirs, name)
		return nil
	}
	return pathErr("remove", name, syscall.ENOENT)
}

// Rename implements FS.
func (fs *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	ino, ok := fs.files[oldname]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	if !fs.dirs[filepath.Dir(newname)] {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	delete(fs.files, oldname)
	fs.files[newname] = ino
	return nil
}

// MkdirAll implements FS.
func (fs *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	dir = clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for d := dir; !fs.dirs[d]; d = filepath.Dir(d) {
		if _, ok := fs.files[d]; ok {
			return pathErr("mkdir", d, syscall.ENOTDIR)
		}
		fs.dirs[d] = true
	}
	return nil
}

// List implements FS.
func (fs *MemFS) List(dir string) ([]string, error) {
	dir = clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.dirs[dir] {
		return nil, pathErr("open", dir, syscall.ENOENT)
	}
	var names []string
	for n := range fs.files {
		if filepath.Dir(n) == dir {
			names = append(names, filepath.Base(n))
		}
	}
	for d := range fs.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Stat implements FS.
func (fs *MemFS) Stat(name string) (os.FileInfo, error) {
	name = clean(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dirs[name] {
		return memInfo{name: filepath.Base(name), dir: true}, nil
	}
	ino, ok := fs.files[name]
	if !ok {
		return nil, pathErr("stat", name, syscall.ENOENT)
	}
	return memInfo{name: filepath.Base(name), size: int64(len(ino.data)), mod: ino.modTime}, nil
}

// SyncDir implements FS.
func (fs *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.dirs[dir] {
		return pathErr("sync", dir, syscall.ENOENT)
	}
	for n := range fs.durable {
		if filepath.Dir(n) == dir {
			if _, ok := fs.files[n]; !ok {
				delete(fs.durable, n)
			}
		}
	}
	for n, ino := range fs.files {
		if filepath.Dir(n) == dir {
			fs.durable[n] = ino
		}
	}
	return nil
}

// Lock implements FS; locks are held per MemFS and vanish in a crash.
func (fs *MemFS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	f.Close()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.locks[name] {
		return nil, fmt.Errorf("%s: %w", name, ErrLocked)
	}
	fs.locks[name] = true
	return &memLock{fs: fs, name: name}, nil
}

type memLock struct {
	fs   *MemFS
	name string
	once sync.Once
}

func (l *memLock) Close() error {
	l.once.Do(func() {
		l.fs.mu.Lock()
		delete(l.fs.locks, l.name)
		l.fs.mu.Unlock()
	})
	return nil
}

func (fs *MemFS) truncateLocked(ino *inode, size int64) {
	ino.data = resize(ino.data, size)
	ino.pending = append(ino.pending, memOp{off: size, truncate: true})
	ino.modTime = time.Now()
}

type memFile struct {
	fs     *MemFS
	ino    *inode
	name   string
	flag   int
	pos    int64
	closed bool
}

func (f *memFile) check(op string, write bool) error {
	if f.closed {
		return pathErr(op, f.name, os.ErrClosed)
	}
	acc := f.flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	if write && acc == os.O_RDONLY || !write && acc == os.O_WRONLY {
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if f.pos >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[f.pos:])
	f.pos += int64(n)
	return n, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		f.pos = int64(len(f.ino.data))
	}
	f.writeLocked(p, f.pos)
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	f.writeLocked(p, off)
	return len(p), nil
}

func (f *memFile) writeLocked(p []byte, off int64) {
	op := memOp{off: off, data: append([]byte(nil), p...)}
	f.ino.data = applyOp(f.ino.data, op)
	f.ino.pending = append(f.ino.pending, op)
	f.ino.modTime = time.Now()
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("sync", f.name, os.ErrClosed)
	}
	for _, op := range f.ino.pending {
		f.ino.synced = applyOp(f.ino.synced, op)
	}
	f.ino.pending = nil
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	f.fs.truncateLocked(f.ino, size)
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return nil, pathErr("stat", f.name, os.ErrClosed)
	}
	return memInfo{name: filepath.Base(f.name), size: int64(len(f.ino.data)), mod: f.ino.modTime}, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Name() string { return f.name }

type memInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
