package local

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/lazyfs"
)

// StateSubdir is the folder under Options.StateDir that holds one state
// file per live local driver. The format is JSON:
//
//	{"owner_pid": 123, "owner_start": 456, "dir": "/abs/run/folder",
//	 "procs": [{"node": "a1", "pid": 789, "start": 1011}],
//	 "mounts": ["/abs/run/folder/disks/a1-data"]}
//
// "start" values are the process start times from /proc/PID/stat (clock
// ticks since boot), so a pid the kernel reused is never mistaken for
// ours.
const StateSubdir = ".lossbench-local"

type procRecord struct {
	Node  string `json:"node"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

type stateRecord struct {
	OwnerPID   int          `json:"owner_pid"`
	OwnerStart uint64       `json:"owner_start"`
	Dir        string       `json:"dir"`
	Procs      []procRecord `json:"procs"`
	Mounts     []string     `json:"mounts"`
}

// stateFile is this driver's record, rewritten on every change.
type stateFile struct {
	mu   sync.Mutex
	path string
	rec  stateRecord
}

func newStateFile(stateDir, runDir string) (*stateFile, error) {
	dir := filepath.Join(stateDir, StateSubdir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("local: state: %w", err)
	}
	pid := os.Getpid()
	start, _ := osutil.ProcStart(pid)
	s := &stateFile{
		path: filepath.Join(dir, fmt.Sprintf("%d-%d.json", pid, time.Now().UnixNano())),
		rec:  stateRecord{OwnerPID: pid, OwnerStart: start, Dir: runDir, Procs: []procRecord{}, Mounts: []string{}},
	}
	if err := s.write(); err != nil {
		return nil, err
	}
	return s, nil
}

// write replaces the file atomically; s.mu is held or s is new.
func (s *stateFile) write() error {
	b, err := json.Marshal(s.rec)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("local: state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("local: state: %w", err)
	}
	return nil
}

func (s *stateFile) update(f func(r *stateRecord)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.rec)
	_ = s.write() // best effort: the record only helps a later Reap
}

func (s *stateFile) addProc(node string, pid int) {
	start, _ := osutil.ProcStart(pid)
	s.update(func(r *stateRecord) {
		r.Procs = append(r.Procs, procRecord{Node: node, PID: pid, Start: start})
	})
}

func (s *stateFile) removeProc(node string, pid int) {
	s.update(func(r *stateRecord) {
		out := r.Procs[:0]
		for _, p := range r.Procs {
			if p.PID != pid {
				out = append(out, p)
			}
		}
		r.Procs = out
	})
}

func (s *stateFile) addMount(path string) {
	s.update(func(r *stateRecord) { r.Mounts = append(r.Mounts, path) })
}

func (s *stateFile) removeMount(path string) {
	s.update(func(r *stateRecord) {
		out := r.Mounts[:0]
		for _, m := range r.Mounts {
			if m != path {
				out = append(out, m)
			}
		}
		r.Mounts = out
	})
}

func (s *stateFile) remove() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local: state: %w", err)
	}
	return nil
}

// mounted reports whether path is a mount point now.
func mounted(path string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Reap finds the state files under stateDir whose harness is gone, kills
// the broker processes they list that still run (their whole process
// group), unmounts their tmpfs disks and lazyfs data folders and removes
// the files. Files of a
// harness that still runs are left alone. It returns one line per thing
// it cleaned.
func Reap(stateDir string) ([]string, error) {
	dir := filepath.Join(stateDir, StateSubdir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("local: reap: %w", err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var did []string
	var errs []error
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(path)
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r stateRecord
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, fmt.Errorf("local: reap %s: %w", path, err))
			continue
		}
		if r.OwnerPID == os.Getpid() || osutil.Alive(r.OwnerPID, r.OwnerStart) {
			continue
		}
		ok := true
		for _, p := range r.Procs {
			if !osutil.Alive(p.PID, p.Start) {
				continue
			}
			// Our brokers lead their own process group.
			if err := syscall.Kill(-p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
			}
			for i := 0; i < 100 && osutil.Alive(p.PID, p.Start); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			did = append(did, fmt.Sprintf("killed left-over broker %s (pid %d) of run %s", p.Node, p.PID, r.Dir))
		}
		for _, m := range r.Mounts {
			if !mounted(m) {
				continue
			}
			// A lazyfs mount of a dead harness has no server left:
			// ForceUnmount detaches it (umount2, or fusermount3 -u -z).
			if err := lazyfs.ForceUnmount(m); err != nil {
				errs = append(errs, fmt.Errorf("local: reap: %w", err))
				ok = false
				continue
			}
			did = append(did, "unmounted left-over disk "+m)
		}
		did = append(did, reapDatabases(r.Dir)...)
		if ok {
			if err := os.Remove(path); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return did, errors.Join(errs...)
}
