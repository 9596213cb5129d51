// Package osutil holds the small process helpers the harness's drivers,
// database servers and bench share: picking a free loopback port and
// quoting the end of a log file in an error message.
package osutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/lossbench/lossbench/chaos/freeport"
)

// FreePort is freeport.Port: a port on ip free now and below the
// kernel's ephemeral range, so that no other process is handed it before
// the program it is for binds it.
func FreePort(ip string) (int, error) { return freeport.Port(ip) }

// FreeAddr is FreePort as host:port.
func FreeAddr(ip string) (string, error) { return freeport.Addr(ip) }

// Tail returns the last lines of the file at path, indented two spaces,
// for an error message; "(no log: …)" when it cannot be read.
func Tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	parts := bytes.Split(b, []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return "  " + string(bytes.Join(parts, []byte("\n  ")))
}

// ProcStart is the start time of pid in clock ticks since boot (field 22
// of /proc/PID/stat).
func ProcStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// Stopped reports whether every thread of pid is stopped by a signal
// (state T). kill(SIGSTOP) returns before that: the kernel wakes one
// thread to start the group stop, and until it runs the others may still
// run, serve and answer.
func Stopped(pid int) (bool, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false, nil
		}
	}
	return true, nil
}

// Alive reports whether pid runs (a zombie does not) and is the process
// that started at start.
func Alive(pid int, start uint64) bool {
	got, err := ProcStart(pid)
	if err != nil {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	if start == 0 {
		return true
	}
	return got == start
}

// Size is the size of the file at path, 0 if there is none: where a log
// opened for appending will go on.
func Size(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// SaysAddrInUse reports whether the log at path, from offset on (a
// process's last start), says a port it binds was taken (EADDRINUSE:
// "address already in use" from Go, "Address already in use" from C).
func SaysAddrInUse(path string, offset int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return err == nil && bytes.Contains(bytes.ToLower(b), []byte("address already in use"))
}
