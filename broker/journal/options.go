package journal

import (
	"fmt"
	"strings"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// DefaultSegmentSize is the size segments are preallocated to.
const DefaultSegmentSize = 64 << 20

// MinSegmentSize keeps room for a header and a few records;
// MaxSegmentSize keeps preallocation (writing the segment's zeros) short.
const (
	MinSegmentSize = 1 << 10
	MaxSegmentSize = 4 << 30
)

// DefaultRecoverBodyBudget bounds the body bytes Recover hands out.
const DefaultRecoverBodyBudget = 64 << 20

// Options configure Open. The zero value is the default.
type Options struct {
	// FS is the filesystem; nil means vfs.Default.
	FS vfs.FS
	// Sync is when Write makes data durable; the zero value is SyncBatch.
	Sync SyncPolicy
	// SegmentSize is the size of a segment file; 0 means 64 MiB.
	SegmentSize int64
	// Repair lets Open cut the log at corruption instead of refusing.
	Repair bool
	// Logf receives what recovery did (torn tails, repairs); nil is silent.
	Logf func(format string, args ...any)
	// LockTimeout is how long Open waits for another process to release
	// the directory lock (a standby broker on shared storage waits for the
	// master to go); 0 fails at once, negative waits for ever.
	LockTimeout time.Duration
	// Epoch fences the journal for shared-storage master/slave: the lease
	// epoch of the broker opening it (0: not fenced). Every segment it
	// starts records the epoch; Open starts a new segment when the last
	// one is of an older epoch, refuses a journal a newer epoch has
	// written to (ErrStaleEpoch), and does not replay frames an older
	// epoch appended after a newer one took over (SplitBrain).
	Epoch int64
	// RecoverBodyBudget bounds the body bytes Recover hands out in memory;
	// messages past it come with Body nil, for Load. 0 means
	// DefaultRecoverBodyBudget, negative means no bound.
	RecoverBodyBudget int64
	// Tap, when set, is called by the writer goroutine with the batches
	// of each write, in log order, once written and before their sync
	// (their adds carry their seqs): a master streams them to its
	// replicas while its own fdatasync runs (broker/replication). It must
	// not block, nor keep the batches past the Write that returns them.
	Tap func(bs []*store.Batch)

	// syncPrealloc makes segment preallocation synchronous, so tests that
	// count filesystem operations see them in a fixed order.
	syncPrealloc bool
	// lazyAckDelay overrides the const of that name (tests that count
	// syncs set it long, so that no timer adds one).
	lazyAckDelay time.Duration
}

// SyncMode says when a write is made durable.
type SyncMode int

// Sync modes.
const (
	// SyncBatch is group commit: one fdatasync covers every Write waiting
	// at that moment, and each returns once it is durable.
	SyncBatch SyncMode = iota
	// SyncAlways syncs each Write on its own, with no coalescing across
	// callers.
	SyncAlways
	// SyncInterval returns once the data is written (to the page cache)
	// and syncs at least every Interval.
	SyncInterval
	// SyncNever returns once the data is written; the journal syncs only
	// when it starts a new segment and at Close.
	SyncNever
)

// SyncPolicy is a sync mode and, for SyncInterval, its interval.
type SyncPolicy struct {
	Mode     SyncMode
	Interval time.Duration
}

// Durable reports whether Write returns only once its batch is on stable
// storage.
func (p SyncPolicy) Durable() bool { return p.Mode == SyncBatch || p.Mode == SyncAlways }

// String returns the policy in the form ParseSyncPolicy accepts.
func (p SyncPolicy) String() string {
	switch p.Mode {
	case SyncBatch:
		return "batch"
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval=" + p.Interval.String()
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(p.Mode))
}

// ParseSyncPolicy parses "always", "batch", "interval=<duration>" (e.g.
// interval=10ms) or "never".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "batch", "":
		return SyncPolicy{Mode: SyncBatch}, nil
	case "always":
		return SyncPolicy{Mode: SyncAlways}, nil
	case "never":
		return SyncPolicy{Mode: SyncNever}, nil
	}
	if v, ok := strings.CutPrefix(s, "interval="); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return SyncPolicy{}, fmt.Errorf("journal: sync policy %q: %w", s, err)
		}
		if d <= 0 {
			return SyncPolicy{}, fmt.Errorf("journal: sync policy %q: interval must be positive", s)
		}
		return SyncPolicy{Mode: SyncInterval, Interval: d}, nil
	}
	return SyncPolicy{}, fmt.Errorf("journal: sync policy %q: want always, batch, interval=<duration> or never", s)
}
