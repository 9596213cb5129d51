package dbserver

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// A database server is a tree of processes, and not one process group:
// PostgreSQL's backends each call setsid(), so a signal to the postmaster's
// group misses them. Faults therefore walk the tree through /proc.

// procStat returns the parent pid and state of pid ('Z' zombie, ...).
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 > len(b) {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(string(f[1]))
	return ppid, f[0][0], true
}

// children lists the live children of every pid in parents.
func children(parents map[int]bool) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || parents[pid] {
			continue
		}
		if ppid, state, ok := procStat(pid); ok && parents[ppid] && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// freezeTree stops root and all its descendants with SIGSTOP (parents
// before children, so no new child escapes) and returns them, root first.
// kill(2) only queues the signal: a process stops when it next runs, and
// until then it can still fork (a postmaster starting a backend). So each
// round waits until every process signalled is seen stopped before it
// looks for children, and the walk ends only when a round of stopped
// processes has no child left running.
func freezeTree(root int) []int {
	if syscall.Kill(root, syscall.SIGSTOP) != nil {
		return nil
	}
	waitStopped([]int{root})
	all := []int{root}
	seen := map[int]bool{root: true}
	for {
		kids := children(seen)
		if len(kids) == 0 {
			return all
		}
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGSTOP)
			seen[k] = true
			all = append(all, k)
		}
		waitStopped(kids)
	}
}

// waitStopped waits, up to a second, until each of pids is stopped
// ('T'), gone or a zombie. One that takes longer (in an uninterruptible
// sleep on a slow disk) is not waited for further: a child it forks after
// the last scan would escape the freeze, which the second's wait makes
// unlikely, not impossible.
func waitStopped(pids []int) {
	deadline := time.Now().Add(time.Second)
	for _, p := range pids {
		for {
			_, state, ok := procStat(p)
			if !ok || state == 'T' || state == 't' || state == 'Z' || state == 'X' || !time.Now().Before(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// treeOf returns root and its live descendants without stopping them.
func treeOf(root int) []int {
	all := []int{root}
	seen := map[int]bool{root: true}
	for {
		kids := children(seen)
		if len(kids) == 0 {
			return all
		}
		for _, k := range kids {
			seen[k] = true
			all = append(all, k)
		}
	}
}

// killTree SIGKILLs root and every descendant at once (frozen first, so the
// crash is simultaneous) and waits up to d for them to be gone.
func killTree(root int, d time.Duration) {
	pids := freezeTree(root)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(-root, syscall.SIGKILL)
	deadline := time.Now().Add(d)
	for _, p := range pids {
		for time.Now().Before(deadline) {
			if _, state, ok := procStat(p); !ok || state == 'Z' {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
