package lazyfs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Op is a file operation a disk error can hit.
type Op uint8

// The operations an ErrorRule can fail.
const (
	OpRead  Op = 1 << iota // read(2)
	OpWrite                // write(2), pwrite(2)
	OpFsync                // fsync(2), fdatasync(2), and the sync of an O_SYNC/O_DSYNC write
)

// ParseOp reads "read", "write" or "fsync".
func ParseOp(s string) (Op, error) {
	switch s {
	case "read":
		return OpRead, nil
	case "write":
		return OpWrite, nil
	case "fsync":
		return OpFsync, nil
	}
	return 0, fmt.Errorf("lazyfs: unknown op %q; expected read, write or fsync", s)
}

// ErrorRule makes the operations Ops on files whose path matches Pattern
// fail with Errno, from the moment it is injected until it is cleared.
// The failed operation does nothing else: a failed write changes no byte,
// a failed fsync makes nothing durable (the file's unsynced writes stay
// unsynced: a later fsync that succeeds persists them, which is kinder
// than Linux, where a failed writeback may mark the pages clean; a broker
// that retries is caught by counting, Stats.Injected), a failed read
// returns no data.
type ErrorRule struct {
	// Errno is the error returned, e.g. syscall.EIO or syscall.ENOSPC.
	Errno syscall.Errno
	// Ops is a set of Op bits.
	Ops Op
	// Pattern is a filepath.Match glob matched against the file's path
	// relative to the mount (as named when opened) and, when it has no
	// "/", against its base name; "" matches every file.
	Pattern string
	// Probability in (0, 1) fails each matching operation with that
	// probability, drawn from Seed; 0 or 1 fails every one.
	Probability float64
	Seed        uint64
}

// matches says whether rule covers path.
func (r ErrorRule) matches(path string) bool {
	if r.Pattern == "" {
		return true
	}
	if ok, _ := filepath.Match(r.Pattern, path); ok {
		return true
	}
	if !strings.Contains(r.Pattern, "/") {
		ok, _ := filepath.Match(r.Pattern, filepath.Base(path))
		return ok
	}
	return false
}

// injector decides the faults of one FS: the active error rules and the
// stall gate. Its zero value injects nothing.
type injector struct {
	mu       sync.Mutex
	rules    []*activeRule
	next     int
	stall    chan struct{} // closed when the current stall ends; nil: none
	timer    *time.Timer
	injected int64
	stalled  int64
}

type activeRule struct {
	id int
	ErrorRule
	rnd *rand.Rand
}

// add activates r and returns its id for remove.
func (in *injector) add(r ErrorRule) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.next++
	in.rules = append(in.rules, &activeRule{id: in.next, ErrorRule: r, rnd: rand.New(rand.NewPCG(r.Seed, r.Seed^0x9e3779b97f4a7c15))})
	return in.next
}

// remove deactivates the rule id (0: every rule).
func (in *injector) remove(id int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	kept := in.rules[:0]
	for _, r := range in.rules {
		if id != 0 && r.id != id {
			kept = append(kept, r)
		}
	}
	in.rules = kept
}

// fail returns the errno the first matching rule injects into op on path,
// or 0.
func (in *injector) fail(op Op, path string) syscall.Errno {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range in.rules {
		if r.Ops&op == 0 || !r.matches(path) {
			continue
		}
		if p := r.Probability; p > 0 && p < 1 && r.rnd.Float64() >= p {
			continue
		}
		in.injected++
		return r.Errno
	}
	return 0
}

// startStall holds every operation from now until d has passed or
// endStall is called; a stall already running is extended to end d from
// now.
func (in *injector) startStall(d time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stall == nil {
		in.stall = make(chan struct{})
	}
	if in.timer != nil {
		in.timer.Stop()
	}
	in.timer = time.AfterFunc(d, in.endStall)
}

// endStall lets every held operation go on.
func (in *injector) endStall() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	if in.stall != nil {
		close(in.stall)
		in.stall = nil
	}
}

// wait holds the calling operation while a stall lasts; EINTR if the
// kernel interrupts the request first.
func (in *injector) wait(ctx context.Context) syscall.Errno {
	in.mu.Lock()
	ch := in.stall
	if ch != nil {
		in.stalled++
	}
	in.mu.Unlock()
	if ch == nil {
		return 0
	}
	select {
	case <-ch:
		return 0
	case <-ctx.Done():
		return syscall.EINTR
	}
}

// InjectError activates rule and returns a function that clears it.
func (l *FS) InjectError(rule ErrorRule) (clear func()) {
	id := l.faults.add(rule)
	return func() { l.faults.remove(id) }
}

// ClearErrors clears every error rule.
func (l *FS) ClearErrors() { l.faults.remove(0) }

// Stall holds every operation on the FS (lookups, opens, reads, writes,
// syncs, attribute and directory-entry changes) for d, or until Unstall:
// a dying disk, a SAN path failing over. Operations already past the
// gate finish.
func (l *FS) Stall(d time.Duration) { l.faults.startStall(d) }

// Unstall ends a stall now.
func (l *FS) Unstall() { l.faults.endStall() }
