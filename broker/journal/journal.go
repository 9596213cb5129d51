package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Store is the journal: a store.Store that also implements store.Loader,
// store.Statser and store.Namer.
type Store struct {
	dir     string
	fs      vfs.FS
	opts    Options
	segSize int64
	lock    io.Closer
	logf    func(format string, args ...any)

	mu        sync.Mutex // guards the fields below and segment.live/end
	index     map[uint64]entry
	segs      []*segment // oldest first; the last is the active one
	segByID   map[uint64]*segment
	nextSeq   uint64
	live      int64  // body bytes of live messages
	liveRec   int64  // add record bytes of live messages
	lastID    uint64 // highest segment id seen by replay
	noReclaim bool   // a removal failed: stop, or a later one could resurrect

	manMu   sync.Mutex // serialises manifest writes; guards man
	man     manifest   // as last written
	dropped []string   // segment files replay dropped, removed once the manifest no longer names them
	clean   *manifest  // set by replay when the journal was closed cleanly
	salvage salvage    // what repair skipped during replay

	splitBrain []SplitBrain // found by replay (Options.Epoch)
	fresh      bool         // replay cut the last segment: Open starts a new one
	readOnly   bool         // Verify: replay changes nothing on disk

	// Owned by the writer goroutine (and by Open before it starts).
	active   *segment
	off      int64 // where the next frame goes in active
	unsynced bool  // active has writes not yet synced
	buf      []byte
	cbuf     []byte // compaction's
	offs     []int64
	next     chan preallocResult // the segment being preallocated
	// Group commit (SyncBatch): the last sync's duration and how many
	// batches it answered, and the timer of the wait for more (see take);
	// lazyC is lazyTimer's channel while lazy acks wait unsynced, nil
	// otherwise.
	lastSync  time.Duration
	released  int
	waitTimer *time.Timer
	lazyTimer *time.Timer
	lazyC     <-chan time.Time

	closeMu sync.RWMutex // Write holds it shared while queueing
	closed  bool
	reqs    chan *request
	done    chan struct{}
	failed  atomic.Pointer[error]

	preallocBytes atomic.Int64 // size of the preallocated next segment, if any

	stats struct {
		fsyncs, fsyncNanos, bytes, writes  atomic.Uint64
		groups, groupBatches, groupMax     atomic.Uint64
		reclaimed, tornBytes, repairedByte atomic.Uint64
		waitNanos, waitTimeouts            atomic.Uint64
		lazyRounds                         atomic.Uint64
		lostMessages                       atomic.Uint64
		compactedMsgs, compactedSegs       atomic.Uint64
	}
}

// entry locates a live message's body (size bytes at off in segment seg);
// rec is the size of its add record, for compaction's accounting.
type entry struct {
	seg  uint64
	off  int64
	size int32
	rec  int32
}

type request struct {
	b    *store.Batch
	size int64
	err  error
	done chan error
	keep bool   // Apply: the adds carry their seqs
	lazy bool   // WriteAcksLazy: answered once written, synced later
	next uint64 // Apply: raise nextSeq to at least this
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

var _ interface {
	store.Store
	store.Loader
	store.Statser
	store.Namer
	store.LazyAcker
} = (*Store)(nil)

// Open opens the journal in dir, creating it if needed, and replays it. It
// fails with an error wrapping ErrLocked if another process has it open,
// and with a *CorruptionError if the log is corrupt and opts.Repair is not
// set.
func Open(dir string, opts Options) (*Store, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize < MinSegmentSize || opts.SegmentSize > MaxSegmentSize {
		return nil, fmt.Errorf("journal: segment size %d outside %d to %d", opts.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if opts.RecoverBodyBudget == 0 {
		opts.RecoverBodyBudget = DefaultRecoverBodyBudget
	}
	if opts.Sync.Mode == SyncInterval && opts.Sync.Interval <= 0 {
		return nil, fmt.Errorf("journal: sync policy %v: interval must be positive", opts.Sync)
	}
	s := &Store{
		dir:     dir,
		fs:      opts.FS,
		opts:    opts,
		segSize: opts.SegmentSize,
		logf:    opts.Logf,
		index:   make(map[uint64]entry),
		segByID: make(map[uint64]*segment),
		nextSeq: 1,
		reqs:    make(chan *request, 4096),
		done:    make(chan struct{}),
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", dir, err)
	}
	if err := s.fs.SyncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return nil, fmt.Errorf("journal: sync parent of %s: %w", dir, err)
	}
	lock, err := LockDir(s.fs, dir, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.open(); err != nil {
		for _, seg := range s.segs {
			seg.f.Close()
		}
		lock.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

func (s *Store) open() error {
	if err := s.replay(); err != nil {
		return err
	}
	if err := s.checkEpoch(); err != nil {
		return err
	}
	// A fenced journal taken over by a new epoch goes on in a new segment
	// that records where the old epoch's log ended, so that anything the
	// old epoch appends to it later is told apart (replay.go, cutAt).
	takeover := len(s.segs) > 0 && (s.fresh || s.opts.Epoch > s.segs[len(s.segs)-1].ep.epoch)
	if len(s.segs) == 0 || takeover {
		id := s.lastID + 1
		var prevID uint64
		var prevEnd int64
		if takeover {
			// Right after the last segment replayed, so that the ids stay
			// consecutive: a preallocated segment replay dropped there is
			// reused (truncated again), not removed.
			prev := s.segs[len(s.segs)-1]
			prevID, prevEnd, id = prev.id, prev.end, prev.id+1
			path := filepath.Join(s.dir, segmentName(id))
			s.dropped = slices.DeleteFunc(s.dropped, func(p string) bool { return p == path })
		}
		seg, err := preallocate(s.fs, s.dir, id, s.segSize)
		if err != nil {
			return fmt.Errorf("journal: create segment: %w", err)
		}
		if err := s.writeHeader(seg, s.nextSeq, prevID, prevEnd); err != nil {
			return err
		}
		seg.endSeq = s.nextSeq
		s.segs = append(s.segs, seg)
		s.segByID[seg.id] = seg
		s.lastID = max(s.lastID, seg.id)
	}
	s.active = s.segs[len(s.segs)-1]
	s.off = s.active.end
	// The manifest names what is on disk now and says the journal is open
	// (not cleanly closed) before anything is written; only then can
	// files it no longer names go.
	err := s.writeManifest(func(m *manifest) {
		*m = manifest{oldest: s.segs[0].id, newest: s.active.id}
	})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if len(s.dropped) > 0 {
		for _, path := range s.dropped {
			if err := s.fs.Remove(path); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return fmt.Errorf("journal: remove %s: %w", path, err)
			}
		}
		if err := s.fs.SyncDir(s.dir); err != nil {
			return fmt.Errorf("journal: sync %s: %w", s.dir, err)
		}
		s.dropped = nil
	}
	s.startPrealloc(s.active.id + 1)
	return nil
}

// head is the start of a new segment: its header and, in a fenced
// journal, its epoch record naming the previous segment and its end.
func (s *Store) head(seg *segment, nextSeq, prevID uint64, prevEnd int64) []byte {
	hdr := appendSegmentHeader(nil, seg.id, nextSeq)
	if s.opts.Epoch > 0 {
		seg.ep = segEpoch{epoch: s.opts.Epoch, prevID: prevID, prevEnd: prevEnd}
		hdr = appendEpoch(hdr, seg.ep)
	}
	return hdr
}

// checkEpoch refuses a fenced open of a journal a newer epoch wrote to.
func (s *Store) checkEpoch() error {
	if s.opts.Epoch <= 0 {
		return nil
	}
	for _, seg := range s.segs {
		if seg.ep.epoch > s.opts.Epoch {
			return fmt.Errorf("%w: %s was written by epoch %d, ours is %d", ErrStaleEpoch, seg.path, seg.ep.epoch, s.opts.Epoch)
		}
	}
	return nil
}

// SplitBrain returns the evidence of two writers that Open found.
func (s *Store) SplitBrain() []SplitBrain { return append([]SplitBrain(nil), s.splitBrain...) }

// writeHeader writes and syncs the header of a new segment that replay or
// Open adds (the writer's roll syncs its headers with the next batch).
func (s *Store) writeHeader(seg *segment, nextSeq, prevID uint64, prevEnd int64) error {
	hdr := s.head(seg, nextSeq, prevID, prevEnd)
	if _, err := seg.f.WriteAt(hdr, 0); err != nil {
		seg.f.Close()
		return fmt.Errorf("journal: write segment header %s: %w", seg.path, err)
	}
	if err := seg.f.Sync(); err != nil {
		seg.f.Close()
		return fmt.Errorf("journal: sync segment header %s: %w", seg.path, err)
	}
	seg.end = int64(len(hdr))
	seg.size = max(seg.size, seg.end)
	seg.firstSeq = nextSeq
	return nil
}

// LockDir takes the journal's directory lock (dir/LOCK), waiting up to
// timeout for another holder (negative: for ever); see
// Options.LockTimeout.
func LockDir(fs vfs.FS, dir string, timeout time.Duration) (io.Closer, error) {
	path := filepath.Join(dir, "LOCK")
	deadline := time.Now().Add(timeout)
	for {
		l, err := fs.Lock(path)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, vfs.ErrLocked) {
			return nil, fmt.Errorf("journal: lock %s: %w", dir, err)
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return nil, fmt.Errorf("journal: %s is in use by another broker: %w", dir, err)
		}
		wait := 50 * time.Millisecond
		if timeout >= 0 {
			wait = min(wait, time.Until(deadline))
		}
		time.Sleep(wait)
	}
}

// Name implements store.Namer.
func (s *Store) Name() string { return "journal" }

// Dir returns the journal's directory.
func (s *Store) Dir() string { return s.dir }

// Write implements store.Store. It sets the Seq and Size of b's adds. The
// context is checked before the batch is queued; once queued, Write waits
// for the outcome, since a batch cannot be taken back.
func (s *Store) Write(ctx context.Context, b *store.Batch) error {
	return s.write(ctx, b, false)
}

// WriteAcksLazy implements store.LazyAcker. Under SyncBatch the acks are
// written with the next group and answered at once; the writer makes them
// durable with its next sync, or lazyAckDelay later if no batch needing a
// sync comes (see complete). Under the other policies it is Write.
func (s *Store) WriteAcksLazy(ctx context.Context, seqs []uint64) error {
	return s.write(ctx, &store.Batch{Acks: seqs}, s.opts.Sync.Mode == SyncBatch)
}

func (s *Store) write(ctx context.Context, b *store.Batch, lazy bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	size := batchFrameSize(b)
	if size > maxFrameLen {
		return fmt.Errorf("journal: batch of %d bytes too large", size)
	}
	if err := s.admit(); err != nil {
		return err
	}
	if len(b.Adds) == 0 && len(b.Acks) == 0 {
		s.closeMu.RUnlock()
		return nil
	}
	r := requestPool.Get().(*request)
	r.b, r.size, r.err, r.keep, r.next, r.lazy = b, size, nil, false, 0, lazy
	s.reqs <- r
	s.closeMu.RUnlock()
	err := <-r.done
	r.b = nil
	requestPool.Put(r)
	return err
}

// admit takes closeMu shared, for queueing requests, unless the store is
// closed or failed: then it returns why, without the lock.
func (s *Store) admit() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return store.ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		s.closeMu.RUnlock()
		return *f
	}
	return nil
}

// fail records the first storage error; it and every later Write fail
// with it.
func (s *Store) fail(err error) error {
	e := fmt.Errorf("%w: journal: %w", store.ErrFailed, err)
	s.failed.CompareAndSwap(nil, &e)
	return *s.failed.Load()
}

// Load implements store.Loader: it reads the body of a live message.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		e, ok := s.index[seq]
		seg := s.segByID[e.seg]
		s.mu.Unlock()
		if s.isClosed() {
			return nil, store.ErrClosed
		}
		if !ok || seg == nil {
			return nil, fmt.Errorf("journal: load of unknown message %d", seq)
		}
		body := make([]byte, e.size)
		n, err := seg.f.ReadAt(body, e.off)
		if n == len(body) {
			return body, nil
		}
		// Compaction may have moved the message on, and reclaim closed
		// the segment it was read from: look again.
		s.mu.Lock()
		now, still := s.index[seq]
		s.mu.Unlock()
		if still && now != e {
			continue
		}
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("journal: load message %d from %s at %d: %w", seq, seg.path, e.off, err)
	}
}

func (s *Store) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

func (s *Store) splitBrainFrames() int {
	n := 0
	for _, e := range s.splitBrain {
		n += e.Frames
	}
	return n
}

// Stats implements store.Statser. group_commits_total counts the writes
// of the writer goroutine (each carrying group_commit_batches_total /
// group_commits_total batches on average); writes_total / fsyncs_total is
// how many batches one fdatasync covered on average.
func (s *Store) Stats() map[string]float64 {
	s.mu.Lock()
	live, liveBytes, liveRec, segs := len(s.index), s.live, s.liveRec, len(s.segs)
	disk := s.preallocBytes.Load()
	for _, seg := range s.segs {
		disk += seg.size
	}
	s.mu.Unlock()
	ratio := 0.0
	if disk > 0 {
		ratio = float64(liveRec) / float64(disk)
	}
	failed := 0.0
	if s.failed.Load() != nil {
		failed = 1
	}
	st := &s.stats
	return map[string]float64{
		"fsyncs_total":                  float64(st.fsyncs.Load()),
		"fsync_seconds_total":           float64(st.fsyncNanos.Load()) / 1e9,
		"bytes_written_total":           float64(st.bytes.Load()),
		"writes_total":                  float64(st.writes.Load()),
		"group_commits_total":           float64(st.groups.Load()),
		"group_commit_batches_total":    float64(st.groupBatches.Load()),
		"group_commit_batches_max":      float64(st.groupMax.Load()),
		"segments":                      float64(segs),
		"split_brain_frames":            float64(s.splitBrainFrames()),
		"segments_reclaimed_total":      float64(st.reclaimed.Load()),
		"live_messages":                 float64(live),
		"live_bytes":                    float64(liveBytes),
		"journal_disk_bytes":            float64(disk),
		"journal_live_ratio":            ratio,
		"compacted_messages_total":      float64(st.compactedMsgs.Load()),
		"compacted_segments_total":      float64(st.compactedSegs.Load()),
		"recovery_torn_bytes_total":     float64(st.tornBytes.Load()),
		"recovery_repaired_bytes_total": float64(st.repairedByte.Load()),
		"recovery_lost_messages_total":  float64(st.lostMessages.Load()),
		"group_wait_seconds_total":      float64(st.waitNanos.Load()) / 1e9,
		"group_wait_timeouts_total":     float64(st.waitTimeouts.Load()),
		"lazy_ack_rounds_total":         float64(st.lazyRounds.Load()),
		"failed":                        failed,
	}
}

// Close implements store.Store: it writes and syncs what is queued, then
// releases the files and the directory lock. It returns the store's
// failure, if it failed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.closeMu.Unlock()
	<-s.done
	if s.next != nil {
		if r := <-s.next; r.seg != nil {
			r.seg.f.Close()
		}
	}
	if s.failed.Load() == nil {
		// Everything is synced: record where the log ends, so that the
		// next Open takes damage there for corruption, not a torn tail.
		err := s.writeManifest(func(m *manifest) {
			m.clean, m.cleanSeg, m.cleanEnd = true, s.active.id, s.off
		})
		if err != nil {
			s.fail(err)
		}
	}
	s.mu.Lock()
	for _, seg := range s.segs {
		seg.f.Close()
	}
	s.mu.Unlock()
	s.lock.Close()
	if f := s.failed.Load(); f != nil {
		return *f
	}
	return nil
}
