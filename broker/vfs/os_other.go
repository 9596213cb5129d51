//go:build !linux

package vfs

import "os"

func datasync(f *os.File) error { return f.Sync() }

// flock is a no-op where it is not implemented: only Linux is supported
// for running two brokers against one directory.
func flock(f *os.File) error { return nil }
