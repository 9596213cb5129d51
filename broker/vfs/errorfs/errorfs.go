// Package errorfs wraps a vfs.FS so that tests can inject faults into
// storage: an error on the Nth write or sync, ENOSPC after N bytes, a torn
// write that stores only a prefix before failing, random faults. Injectors
// are values, composable with Any and OnPath, and seeded where random, so a
// failing run can be replayed.
//
//	fs := errorfs.Wrap(vfs.NewMem(), errorfs.Any(
//		errorfs.OnNth(3, errorfs.ErrInjected, errorfs.OpSync),
//		errorfs.ENOSPCAfter(1<<20),
//	))
package errorfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/lossbench/lossbench/broker/vfs"
)

// ErrInjected is the default error injectors return.
var ErrInjected = errors.New("errorfs: injected error")

// OpKind is the kind of a filesystem operation.
type OpKind int

// Operation kinds.
const (
	OpOpen OpKind = iota
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpClose
	OpStat
	OpRemove
	OpRename
	OpMkdirAll
	OpList
	OpSyncDir
	OpLock
)

var opNames = [...]string{"open", "read", "write", "sync", "truncate", "close", "stat",
	"remove", "rename", "mkdirall", "list", "syncdir", "lock"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", int(k))
}

// Op describes one operation about to happen.
type Op struct {
	Kind OpKind
	// Path is the file's name as opened, or the path operated on.
	Path string
	// Off is the offset of a positioned read or write (-1 if unpositioned).
	Off int64
	// N is the number of bytes of a read or write. For a write, an injector
	// that returns an error may lower N: the wrapper then writes that
	// prefix before failing (a torn or short write).
	N int
}

// Injector decides whether an operation fails. Implementations must be
// safe for concurrent use.
type Injector interface {
	// Inject is called before op runs; a non-nil error fails it.
	Inject(op *Op) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op *Op) error

// Inject implements Injector.
func (f InjectorFunc) Inject(op *Op) error { return f(op) }

// Any asks each injector in turn; the first error wins. Every injector
// sees every op, so counting injectors stay in step.
func Any(injs ...Injector) Injector {
	return InjectorFunc(func(op *Op) error {
		var first error
		n := op.N
		for _, inj := range injs {
			o := *op
			if err := inj.Inject(&o); err != nil && first == nil {
				first, n = err, o.N
			}
		}
		op.N = n
		return first
	})
}

// OnPath applies inj only to operations whose path satisfies match; other
// operations are not shown to inj at all.
func OnPath(match func(path string) bool, inj Injector) Injector {
	return InjectorFunc(func(op *Op) error {
		if !match(op.Path) {
			return nil
		}
		return inj.Inject(op)
	})
}

// Switch turns an injector on and off, e.g. to let a store open cleanly
// and then fail. It starts off.
type Switch struct {
	Injector Injector
	on       atomic.Bool
}

// On enables injection.
func (s *Switch) On() { s.on.Store(true) }

// Off disables injection.
func (s *Switch) Off() { s.on.Store(false) }

// Inject implements Injector.
func (s *Switch) Inject(op *Op) error {
	if !s.on.Load() {
		return nil
	}
	return s.Injector.Inject(op)
}

// Wrap returns fs with inj consulted before every operation.
func Wrap(fs vfs.FS, inj Injector) vfs.FS { return &errFS{fs: fs, inj: inj} }

type errFS struct {
	fs  vfs.FS
	inj Injector
}

func (e *errFS) inject(kind OpKind, path string) error {
	op := Op{Kind: kind, Path: path, Off: -1}
	if err := e.inj.Inject(&op); err != nil {
		return &os.PathError{Op: kind.String(), Path: path, Err: err}
	}
	return nil
}

func (e *errFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if err := e.inject(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &errFile{f: f, fs: e, name: name}, nil
}

func (e *errFS) Create(name string) (vfs.File, error) {
	return e.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (e *errFS) Open(name string) (vfs.File, error) { return e.OpenFile(name, os.O_RDONLY, 0) }

func (e *errFS) Remove(name string) error {
	if err := e.inject(OpRemove, name); err != nil {
		return err
	}
	return e.fs.Remove(name)
}

func (e *errFS) Rename(oldname, newname string) error {
	if err := e.inject(OpRename, oldname); err != nil {
		return err
	}
	return e.fs.Rename(oldname, newname)
}

func (e *errFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := e.inject(OpMkdirAll, dir); err != nil {
		return err
	}
	return e.fs.MkdirAll(dir, perm)
}

func (e *errFS) List(dir string) ([]string, error) {
	if err := e.inject(OpList, dir); err != nil {
		return nil, err
	}
	return e.fs.List(dir)
}

func (e *errFS) Stat(name string) (os.FileInfo, error) {
	if err := e.inject(OpStat, name); err != nil {
		return nil, err
	}
	return e.fs.Stat(name)
}

func (e *errFS) SyncDir(dir string) error {
	if err := e.inject(OpSyncDir, dir); err != nil {
		return err
	}
	return e.fs.SyncDir(dir)
}

func (e *errFS) Lock(name string) (io.Closer, error) {
	if err := e.inject(OpLock, name); err != nil {
		return nil, err
	}
	return e.fs.Lock(name)
}

type errFile struct {
	f    vfs.File
	fs   *errFS
	name string
	mu   sync.Mutex // serialises unpositioned writes so a torn prefix stays put
}

func (f *errFile) Read(p []byte) (int, error) {
	op := Op{Kind: OpRead, Path: f.name, Off: -1, N: len(p)}
	if err := f.fs.inj.Inject(&op); err != nil {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: err}
	}
	return f.f.Read(p)
}

func (f *errFile) ReadAt(p []byte, off int64) (int, error) {
	op := Op{Kind: OpRead, Path: f.name, Off: off, N: len(p)}
	if err := f.fs.inj.Inject(&op); err != nil {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: err}
	}
	return f.f.ReadAt(p, off)
}

func (f *errFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := Op{Kind: OpWrite, Path: f.name, Off: -1, N: len(p)}
	if err := f.fs.inj.Inject(&op); err != nil {
		n := 0
		if op.N > 0 && op.N < len(p) {
			n, _ = f.f.Write(p[:op.N])
		}
		return n, &os.PathError{Op: "write", Path: f.name, Err: err}
	}
	return f.f.Write(p)
}

func (f *errFile) WriteAt(p []byte, off int64) (int, error) {
	op := Op{Kind: OpWrite, Path: f.name, Off: off, N: len(p)}
	if err := f.fs.inj.Inject(&op); err != nil {
		n := 0
		if op.N > 0 && op.N < len(p) {
			n, _ = f.f.WriteAt(p[:op.N], off)
		}
		return n, &os.PathError{Op: "write", Path: f.name, Err: err}
	}
	return f.f.WriteAt(p, off)
}

func (f *errFile) Sync() error {
	if err := f.fs.inject(OpSync, f.name); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *errFile) Truncate(size int64) error {
	if err := f.fs.inject(OpTruncate, f.name); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *errFile) Stat() (os.FileInfo, error) {
	if err := f.fs.inject(OpStat, f.name); err != nil {
		return nil, err
	}
	return f.f.Stat()
}

func (f *errFile) Close() error {
	if err := f.fs.inject(OpClose, f.name); err != nil {
		f.f.Close() // the descriptor is gone either way, as with close(2)
		return err
	}
	return f.f.Close()
}

func (f *errFile) Name() string { return f.name }
