// Package vfs is the small filesystem interface the journal goes through, so
// that tests can wrap it with fault injection (package errorfs) or run it on
// an in-memory filesystem that models a crash (NewCrashableMem).
//
// The interface is deliberately narrow: what an append-only log needs and
// nothing more. Sync means a data sync (fdatasync on Linux): it makes a
// file's contents and size durable, not its directory entry; SyncDir makes
// the entries of a directory (creates, renames, removes) durable.
package vfs

import (
	"errors"
	"io"
	"os"
)

// ErrLocked is returned by FS.Lock when another holder has the lock.
var ErrLocked = errors.New("vfs: locked by another process")

// FS is a filesystem.
type FS interface {
	// OpenFile opens name with os.O_* flags (O_RDONLY, O_RDWR, O_WRONLY,
	// O_CREATE, O_EXCL, O_TRUNC).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Rename renames oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and its missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of dir's entries, sorted.
	List(dir string) ([]string, error)
	// Stat describes name.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes dir's entries durable.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on name (created if missing)
	// without waiting; it fails with an error wrapping ErrLocked if held.
	// Closing the returned io.Closer releases the lock.
	Lock(name string) (io.Closer, error)
}

// File is an open file.
type File interface {
	io.Reader
	io.Writer
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data and size durable (fdatasync).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (os.FileInfo, error)
	// Name is the name the file was opened with.
	Name() string
}
