//go:build unix

package main

import "syscall"

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard one (Go's runtime
// does so at start on Linux too; this makes it explicit everywhere) and
// returns the soft limit then in force, or 0 when unlimited.
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		raised := syscall.Rlimit{Cur: l.Max, Max: l.Max}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			l = raised
		}
	}
	if l.Cur >= 1<<40 { // RLIM_INFINITY, or as good as
		return 0, nil
	}
	return l.Cur, nil
}
