package mirror

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lossbench/lossbench/broker/vfs"
)

// FS returns the filesystem the journal opens Root on: each change goes
// to every healthy copy (and to one being rebuilt) in parallel, and
// returns once all of them have it; reads come from the chosen copy, or
// the next healthy one if it fails. A copy that fails an operation is
// dropped; the operation fails only when fewer than MinMirrors copies
// are left.
func (s *Set) FS() vfs.FS { return mfs{s} }

type mfs struct{ s *Set }

// rel maps a path under Root to its path relative to a copy's directory;
// ok is false for a path elsewhere.
func (s *Set) rel(name string) (string, bool) {
	name = filepath.Clean(name)
	if name == s.root {
		return ".", true
	}
	r, ok := strings.CutPrefix(name, s.root+string(filepath.Separator))
	return r, ok
}

func (m *mirror) path(rel string) string { return filepath.Join(m.dir, rel) }

// active returns the copies that take changes: healthy ones and one being
// rebuilt.
func (s *Set) active() []*mirror {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*mirror
	for _, i := range s.order {
		if m := s.ms[i]; m.state == Healthy || m.state == Rebuilding {
			out = append(out, m)
		}
	}
	return out
}

// readers returns the healthy copies, the preferred first.
func (s *Set) readers() []*mirror {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*mirror
	for _, i := range s.order {
		if m := s.ms[i]; m.state == Healthy {
			out = append(out, m)
		}
	}
	return out
}

func (s *Set) isRebuilding(m *mirror) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.state == Rebuilding
}

// pathLock serialises changes of one file with a rebuild's copy of it.
func (s *Set) pathLock(rel string) *sync.Mutex { return &s.paths[pathIndex(rel)] }

// pathLocks is how many locks Set.paths has; pathIndex says which is a
// path's.
const pathLocks = 64

func pathIndex(rel string) int {
	h := fnv.New32a()
	h.Write([]byte(rel))
	return int(h.Sum32() % pathLocks)
}

// each runs op on every copy in ms in parallel and drops the copies it
// fails on. A copy being rebuilt that lacks a file it is told to remove
// or rename is not a failure: the rebuild has not copied it yet.
// errNoCopy: an operation found no healthy copy left to run on.
var errNoCopy = errors.New("no healthy copy left")

func (s *Set) each(ms []*mirror, op func(m *mirror) error) error {
	if len(ms) == 0 {
		// Every copy was dropped (for example by a concurrent operation
		// that failed): there is nothing to write to, which is the
		// fail-stop error, never a silent success.
		if err := s.check(errNoCopy); err != nil {
			return err
		}
		return fmt.Errorf("journal mirrors: %w", errNoCopy)
	}
	errs := make([]error, len(ms))
	if len(ms) == 1 {
		errs[0] = op(ms[0])
	} else {
		var wg sync.WaitGroup
		for i := 1; i < len(ms); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = op(ms[i])
			}()
		}
		errs[0] = op(ms[0])
		wg.Wait()
	}
	var first error
	for i, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		s.drop(ms[i], err)
	}
	return s.check(first)
}

// onReader runs op on the preferred healthy copy, and on the next if it
// fails with anything but a missing file (then that copy is dropped).
func (s *Set) onReader(op func(m *mirror) error) error {
	var last error
	for _, m := range s.readers() {
		err := op(m)
		if err == nil || errors.Is(err, iofs.ErrNotExist) || errors.Is(err, io.EOF) {
			return err
		}
		last = err
		s.drop(m, err)
	}
	if last == nil {
		last = errors.New("no healthy copy")
	}
	return s.check(last)
}

func (f mfs) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	s := f.s
	rel, ok := s.rel(name)
	if !ok {
		return s.ms[0].fs.OpenFile(name, flag, perm)
	}
	mf := &file{s: s, name: name, rel: rel, hs: make([]vfs.File, len(s.ms))}
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		err := s.onReader(func(m *mirror) error {
			h, err := m.fs.OpenFile(m.path(rel), flag, perm)
			if err == nil {
				mf.hs[m.idx] = h
			}
			return err
		})
		if err != nil {
			mf.Close()
			return nil, err
		}
		return mf, nil
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	pl := s.pathLock(rel)
	pl.Lock()
	defer pl.Unlock()
	var hmu sync.Mutex
	var missing error
	err := s.each(s.active(), func(m *mirror) error {
		fl := flag
		if s.isRebuilding(m) {
			fl = fl&^os.O_EXCL | os.O_CREATE
		}
		h, err := m.fs.OpenFile(m.path(rel), fl, perm)
		if errors.Is(err, iofs.ErrNotExist) && fl&os.O_CREATE == 0 {
			hmu.Lock()
			missing = err
			hmu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		hmu.Lock()
		mf.hs[m.idx] = h
		hmu.Unlock()
		return nil
	})
	if err == nil && missing != nil && mf.hs[s.order0()] == nil {
		err = missing
	}
	if err != nil {
		mf.Close()
		return nil, err
	}
	return mf, nil
}

// order0 is the preferred healthy copy's index.
func (s *Set) order0() int {
	if r := s.readers(); len(r) > 0 {
		return r[0].idx
	}
	return 0
}

func (f mfs) Create(name string) (vfs.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (f mfs) Open(name string) (vfs.File, error) { return f.OpenFile(name, os.O_RDONLY, 0) }

// change applies a directory change (remove, rename, mkdir) to every
// active copy.
func (s *Set) change(rels []string, op func(m *mirror) error) error {
	s.gate.RLock()
	defer s.gate.RUnlock()
	var order []int
	for _, r := range rels {
		if i := pathIndex(r); !slices.Contains(order, i) {
			order = append(order, i)
		}
	}
	// Locks in index order: two renames never wait for each other.
	slices.Sort(order)
	for _, i := range order {
		s.paths[i].Lock()
	}
	defer func() {
		for _, i := range order {
			s.paths[i].Unlock()
		}
	}()
	var mu sync.Mutex
	var missing error
	primary := s.order0()
	err := s.each(s.active(), func(m *mirror) error {
		err := op(m)
		if errors.Is(err, iofs.ErrNotExist) && (m.idx == primary || s.isRebuilding(m)) {
			if m.idx == primary {
				mu.Lock()
				missing = err
				mu.Unlock()
			}
			return nil
		}
		return err
	})
	if err == nil {
		err = missing
	}
	return err
}

func (f mfs) Remove(name string) error {
	rel, ok := f.s.rel(name)
	if !ok {
		return f.s.ms[0].fs.Remove(name)
	}
	return f.s.change([]string{rel}, func(m *mirror) error { return m.fs.Remove(m.path(rel)) })
}

func (f mfs) Rename(oldname, newname string) error {
	ro, ok1 := f.s.rel(oldname)
	rn, ok2 := f.s.rel(newname)
	if !ok1 || !ok2 {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: errors.New("mirror: outside the journal")}
	}
	return f.s.change([]string{ro, rn}, func(m *mirror) error { return m.fs.Rename(m.path(ro), m.path(rn)) })
}

func (f mfs) MkdirAll(dir string, perm os.FileMode) error {
	rel, ok := f.s.rel(dir)
	if !ok {
		return f.s.ms[0].fs.MkdirAll(dir, perm)
	}
	return f.s.change(nil, func(m *mirror) error { return m.fs.MkdirAll(m.path(rel), perm) })
}

func (f mfs) List(dir string) ([]string, error) {
	rel, ok := f.s.rel(dir)
	if !ok {
		return f.s.ms[0].fs.List(dir)
	}
	var names []string
	err := f.s.onReader(func(m *mirror) (err error) {
		names, err = m.fs.List(m.path(rel))
		return err
	})
	out := names[:0]
	for _, n := range names {
		if !skipName(n) || n == "LOCK" {
			out = append(out, n)
		}
	}
	return out, err
}

func (f mfs) Stat(name string) (os.FileInfo, error) {
	rel, ok := f.s.rel(name)
	if !ok {
		return f.s.ms[0].fs.Stat(name)
	}
	var fi os.FileInfo
	err := f.s.onReader(func(m *mirror) (err error) {
		fi, err = m.fs.Stat(m.path(rel))
		return err
	})
	return fi, err
}

// SyncDir syncs the directory in every healthy copy (a copy being
// rebuilt is synced whole when the rebuild ends). The parent of Root is
// each copy's parent.
func (f mfs) SyncDir(dir string) error {
	s := f.s
	if filepath.Clean(dir) == filepath.Dir(s.root) {
		return s.each(s.readers(), func(m *mirror) error { return m.fs.SyncDir(filepath.Dir(m.dir)) })
	}
	rel, ok := s.rel(dir)
	if !ok {
		return s.ms[0].fs.SyncDir(dir)
	}
	return s.each(s.readers(), func(m *mirror) error { return m.fs.SyncDir(m.path(rel)) })
}

// Lock: the set already holds the lock in the first directory.
func (f mfs) Lock(name string) (io.Closer, error) {
	if filepath.Clean(name) == filepath.Join(f.s.root, "LOCK") {
		return io.NopCloser(nil), nil
	}
	return f.s.ms[0].fs.Lock(name)
}

// file is a journal file open in every active copy.
type file struct {
	s    *Set
	name string
	rel  string
	mu   sync.Mutex // guards hs and pos
	hs   []vfs.File // by copy index; nil where not open
	pos  int64      // for Read and Write
}

// handle returns f's file in copy m, opening it if needed: in a copy
// being rebuilt (or rebuilt since f was opened) it may not be open yet.
func (f *file) handle(m *mirror, write bool) (vfs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h := f.hs[m.idx]; h != nil {
		return h, nil
	}
	fl := os.O_RDONLY
	if write {
		fl = os.O_RDWR
		if f.s.isRebuilding(m) {
			fl |= os.O_CREATE
		}
	}
	h, err := m.fs.OpenFile(m.path(f.rel), fl, 0o644)
	if err != nil {
		return nil, err
	}
	f.hs[m.idx] = h
	return h, nil
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	var n int
	err := f.s.onReader(func(m *mirror) error {
		h, err := f.handle(m, false)
		if err != nil {
			return err
		}
		n, err = h.ReadAt(p, off)
		if err == io.EOF {
			return io.EOF
		}
		return err
	})
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	s := f.s
	s.gate.RLock()
	defer s.gate.RUnlock()
	pl := s.pathLock(f.rel)
	pl.Lock()
	defer pl.Unlock()
	err := s.each(s.active(), func(m *mirror) error {
		h, err := f.handle(m, true)
		if err != nil {
			return err
		}
		n, err := h.WriteAt(p, off)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *file) Read(p []byte) (int, error) {
	f.mu.Lock()
	off := f.pos
	f.mu.Unlock()
	n, err := f.ReadAt(p, off)
	f.mu.Lock()
	f.pos += int64(n)
	f.mu.Unlock()
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *file) Write(p []byte) (int, error) {
	f.mu.Lock()
	off := f.pos
	f.mu.Unlock()
	n, err := f.WriteAt(p, off)
	f.mu.Lock()
	f.pos += int64(n)
	f.mu.Unlock()
	return n, err
}

// Sync syncs the file in every healthy copy in parallel: the data is
// durable on all of them when it returns. It is never retried on a copy
// where it failed: that copy is dropped.
func (f *file) Sync() error {
	s := f.s
	var ms []*mirror
	for _, m := range s.readers() {
		f.mu.Lock()
		open := f.hs[m.idx] != nil
		f.mu.Unlock()
		if open {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return s.check(errors.New("no healthy copy holds " + f.name))
	}
	return s.each(ms, func(m *mirror) error {
		f.mu.Lock()
		h := f.hs[m.idx]
		f.mu.Unlock()
		return h.Sync()
	})
}

func (f *file) Truncate(size int64) error {
	s := f.s
	s.gate.RLock()
	defer s.gate.RUnlock()
	pl := s.pathLock(f.rel)
	pl.Lock()
	defer pl.Unlock()
	return s.each(s.active(), func(m *mirror) error {
		h, err := f.handle(m, true)
		if err != nil {
			return err
		}
		return h.Truncate(size)
	})
}

func (f *file) Stat() (os.FileInfo, error) {
	var fi os.FileInfo
	err := f.s.onReader(func(m *mirror) error {
		h, err := f.handle(m, false)
		if err != nil {
			return err
		}
		fi, err = h.Stat()
		return err
	})
	return fi, err
}

func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, h := range f.hs {
		if h != nil {
			h.Close()
			f.hs[i] = nil
		}
	}
	return nil
}

func (f *file) Name() string { return f.name }
