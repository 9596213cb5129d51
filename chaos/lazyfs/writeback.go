package lazyfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Writeback models the kernel's periodic writeback of dirty pages: a
// flusher wakes every Interval and writes back every file dirtied at
// least Expire before (Linux: vm.dirty_writeback_centisecs and
// vm.dirty_expire_centisecs). A file written back is clean: a power cut
// afterwards keeps what it held then. As in the kernel the age is the
// file's, not each page's: a file is dirtied when a write or truncation
// finds it clean, stays dirtied from then on however often it is written
// again, and the flusher writes all its dirty pages, old and new.
//
// The zero value (Expire 0) is no writeback at all: nothing becomes
// durable but by fsync, the worst case.
type Writeback struct {
	Expire, Interval time.Duration
}

// None reports whether w writes nothing back.
func (w Writeback) None() bool { return w.Expire <= 0 || w.Interval <= 0 }

// String says what w does: "none", or "expire 30s, every 5s".
func (w Writeback) String() string {
	if w.None() {
		return "none"
	}
	return fmt.Sprintf("expire %s, every %s", w.Expire, w.Interval)
}

// Paths of the kernel's writeback settings.
const (
	expirePath   = "/proc/sys/vm/dirty_expire_centisecs"
	intervalPath = "/proc/sys/vm/dirty_writeback_centisecs"
)

// HostWriteback reads this machine's writeback settings. A host whose
// periodic writeback is off (dirty_writeback_centisecs 0) writes back only
// under memory pressure or sync: that is Writeback{} (none).
func HostWriteback() (Writeback, error) {
	exp, err := centisecs(expirePath)
	if err != nil {
		return Writeback{}, err
	}
	iv, err := centisecs(intervalPath)
	if err != nil {
		return Writeback{}, err
	}
	if exp <= 0 || iv <= 0 {
		return Writeback{}, nil
	}
	return Writeback{Expire: exp, Interval: iv}, nil
}

func centisecs(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("lazyfs: writeback: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("lazyfs: writeback: %s: expected a number of centiseconds, got %q", path, strings.TrimSpace(string(b)))
	}
	return time.Duration(n) * 10 * time.Millisecond, nil
}

// flusher runs the writeback every Interval until done is closed.
func (l *FS) flusher(done <-chan struct{}) {
	t := time.NewTicker(l.wb.Interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			l.writebackExpired()
		}
	}
}

// writebackExpired is one pass of the flusher: every file dirtied at
// least Expire ago is written to the backing file (not fsynced: the
// backing filesystem's page cache survives the cut, see the package doc).
// A pass during a stall does nothing (the disk holds every operation);
// error rules do not apply to it (a failed writeback is not modelled).
func (l *FS) writebackExpired() {
	if l.wb.None() {
		return
	}
	l.faults.mu.Lock()
	stalled := l.faults.stall != nil
	l.faults.mu.Unlock()
	if stalled {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ov := range l.files {
		n, err := ov.writeBackIfOlder(now.Add(-l.wb.Expire))
		if err != nil || n == 0 {
			continue
		}
		l.writtenBack += n
		if l.last.ov == ov {
			l.last.ov = nil
		}
	}
}
