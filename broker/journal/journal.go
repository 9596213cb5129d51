package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Group commit limits: one write() carries at most this many batches or
// (roughly) bytes, so a burst cannot make one waiter wait for all.
const (
	maxGroupBatches = 1024
	maxGroupBytes   = 8 << 20
	// maxGroupWait bounds how long the syncer waits for writers to come
	// back before a sync (see syncLoop).
	maxGroupWait = time.Millisecond
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
	lastID    uint64 // highest segment id seen by replay
	encoded   uint64 // batches applied to the index so far
	noReclaim bool   // a removal failed: stop, or a later one could resurrect

	// Owned by the writer goroutine (and by Open before it starts).
	active   *segment
	off      int64 // where the next frame goes in active
	unsynced bool  // active has writes not yet synced
	buf      []byte
	offs     []int64
	next     chan preallocResult // the segment being preallocated

	closeMu sync.RWMutex // Write holds it shared while queueing
	closed  bool
	reqs    chan *request
	done    chan struct{}
	failed  atomic.Pointer[error]

	// Under SyncBatch the writer hands written groups to the syncer
	// goroutine, and writes the next group while the syncer's fdatasync
	// runs: every batch that arrives during a sync goes into the next one.
	syncq    chan syncJob
	syncDone chan struct{}

	stats struct {
		fsyncs, fsyncNanos, bytes, writes  atomic.Uint64
		groups, groupBatches, groupMax     atomic.Uint64
		reclaimed, tornBytes, repairedByte atomic.Uint64
		waitNanos, waitTimeouts            atomic.Uint64
	}
}

// entry locates a live message's body.
type entry struct {
	seg  uint64
	off  int64
	size int64
}

// syncJob asks the syncer to make seg durable and then answer reqs.
type syncJob struct {
	seg     *segment
	reqs    []*request
	upTo    uint64        // Store.encoded after these batches
	barrier chan struct{} // closed once every earlier job is done
}

type request struct {
	b    *store.Batch
	size int64
	err  error
	done chan error
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

var _ interface {
	store.Store
	store.Loader
	store.Statser
	store.Namer
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
	if opts.SegmentSize < minSegmentSize {
		return nil, fmt.Errorf("journal: segment size %d below minimum %d", opts.SegmentSize, minSegmentSize)
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
	lock, err := lockDir(s.fs, dir, opts.LockTimeout)
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
	if opts.Sync.Mode == SyncBatch {
		s.syncq = make(chan syncJob, 1024)
		s.syncDone = make(chan struct{})
		go s.syncLoop()
	}
	go s.run()
	return s, nil
}

func (s *Store) open() error {
	if err := s.replay(); err != nil {
		return err
	}
	if len(s.segs) == 0 {
		seg, err := preallocate(s.fs, s.dir, s.lastID+1, s.segSize)
		if err != nil {
			return fmt.Errorf("journal: create segment: %w", err)
		}
		hdr := appendSegmentHeader(nil, seg.id, s.nextSeq)
		if _, err := seg.f.WriteAt(hdr, 0); err != nil {
			seg.f.Close()
			return fmt.Errorf("journal: write segment header: %w", err)
		}
		if err := seg.f.Sync(); err != nil {
			seg.f.Close()
			return fmt.Errorf("journal: sync segment header: %w", err)
		}
		seg.end = int64(len(hdr))
		s.segs = append(s.segs, seg)
		s.segByID[seg.id] = seg
	}
	s.active = s.segs[len(s.segs)-1]
	s.off = s.active.end
	s.startPrealloc(s.active.id + 1)
	return nil
}

func lockDir(fs vfs.FS, dir string, timeout time.Duration) (io.Closer, error) {
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
	if err := ctx.Err(); err != nil {
		return err
	}
	size := batchFrameSize(b)
	if size > maxFrameLen {
		return fmt.Errorf("journal: batch of %d bytes too large", size)
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return store.ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		s.closeMu.RUnlock()
		return *f
	}
	if len(b.Adds) == 0 && len(b.Acks) == 0 {
		s.closeMu.RUnlock()
		return nil
	}
	r := requestPool.Get().(*request)
	r.b, r.size, r.err = b, size, nil
	s.reqs <- r
	s.closeMu.RUnlock()
	err := <-r.done
	r.b = nil
	requestPool.Put(r)
	return err
}

// fail records the first storage error; it and every later Write fail
// with it.
func (s *Store) fail(err error) error {
	e := fmt.Errorf("%w: journal: %w", store.ErrFailed, err)
	s.failed.CompareAndSwap(nil, &e)
	return *s.failed.Load()
}

// run is the writer goroutine: it alone writes and syncs segments.
func (s *Store) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.Sync.Mode == SyncInterval {
		t := time.NewTicker(s.opts.Sync.Interval)
		defer t.Stop()
		tick = t.C
	}
	group := make([]*request, 0, 64)
	for {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				s.shutdown()
				return
			}
			group = append(group[:0], r)
			bytes := r.size
			open := true
			if s.opts.Sync.Mode != SyncAlways {
			drain:
				for len(group) < maxGroupBatches && bytes < maxGroupBytes {
					select {
					case r, ok := <-s.reqs:
						if !ok {
							open = false
							break drain
						}
						group = append(group, r)
						bytes += r.size
					default:
						break drain
					}
				}
			}
			s.commit(group)
			clear(group)
			if !open {
				s.shutdown()
				return
			}
		case <-tick:
			if s.unsynced && s.failed.Load() == nil {
				if err := s.syncSeg(s.active); err != nil {
					s.fail(err)
				} else {
					s.reclaim(false, 0)
				}
			}
		}
	}
}

func (s *Store) shutdown() {
	if s.syncq != nil {
		close(s.syncq)
		<-s.syncDone
	} else if s.unsynced && s.failed.Load() == nil {
		if err := s.syncSeg(s.active); err != nil {
			s.fail(err)
		}
	}
	if s.failed.Load() == nil {
		s.reclaim(false, 0)
	}
}

// commit writes a group of batches with one write, then hands them on to
// be synced and answered.
func (s *Store) commit(group []*request) {
	buf := s.buf[:0]
	var written []*request // encoded into buf
	wrote := 0
	for _, r := range group {
		if f := s.failed.Load(); f != nil {
			r.err = *f
			s.reply(r)
			continue
		}
		end := s.off + int64(len(buf))
		if end+r.size > s.segSize && end > segmentHeaderFrameSize {
			err := s.flush(buf)
			buf = buf[:0]
			if err != nil {
				s.fail(err)
			}
			s.complete(s.active, written)
			written = nil
			if err == nil {
				if err = s.roll(); err != nil {
					s.fail(err)
				}
			}
			if f := s.failed.Load(); f != nil {
				r.err = *f
				s.reply(r)
				continue
			}
		}
		s.mu.Lock()
		r.err = s.validateLocked(r.b)
		if r.err == nil {
			buf = s.encodeLocked(buf, r.b)
		}
		s.mu.Unlock()
		if r.err != nil {
			s.reply(r) // rejected: nothing of it was written
			continue
		}
		written = append(written, r)
		wrote++
	}
	if len(written) > 0 && s.failed.Load() == nil {
		if err := s.flush(buf); err != nil {
			s.fail(err)
		}
	}
	s.complete(s.active, written)
	if wrote > 0 {
		s.stats.groups.Add(1)
		s.stats.groupBatches.Add(uint64(wrote))
		if uint64(wrote) > s.stats.groupMax.Load() {
			s.stats.groupMax.Store(uint64(wrote))
		}
	}
	if cap(buf) > 2*maxGroupBytes {
		buf = nil
	}
	s.buf = buf
}

// complete finishes batches written to seg: under SyncBatch the syncer
// syncs and answers them; under SyncAlways they are synced here; under
// the other policies they are answered at once.
func (s *Store) complete(seg *segment, reqs []*request) {
	if len(reqs) == 0 {
		return
	}
	if f := s.failed.Load(); f != nil {
		for _, r := range reqs {
			r.err = *f // maybe written, but we cannot say it is durable
			s.reply(r)
		}
		return
	}
	switch s.opts.Sync.Mode {
	case SyncBatch:
		s.syncq <- syncJob{seg: seg, reqs: reqs, upTo: s.encoded}
		return
	case SyncAlways:
		if err := s.syncSeg(seg); err != nil {
			err = s.fail(err)
			for _, r := range reqs {
				r.err = err
			}
		}
	}
	for _, r := range reqs {
		s.reply(r)
	}
	if s.opts.Sync.Mode == SyncAlways && s.failed.Load() == nil {
		s.reclaim(false, 0)
	}
}

func (s *Store) reply(r *request) {
	if r.err == nil {
		s.stats.writes.Add(1)
	}
	r.done <- r.err
}

// syncLoop is the syncer goroutine under SyncBatch: it takes every job
// waiting, syncs once, and answers them all.
//
// Writers answered by one sync come straight back with their next batch.
// If the syncer started the next sync without them, they would wait a
// whole sync and then make up a group of their own: concurrent writers
// split into groups taking turns, each sync covering only part of them.
// So, when fewer batches are waiting than were answered last time (plus
// those that were already queued then), the syncer waits for the rest a
// little: at most half the last sync's duration, never when a barrier
// (a roll) is waiting.
func (s *Store) syncLoop() {
	defer close(s.syncDone)
	var (
		jobs     []syncJob
		released int           // requests answered by the last sync
		backlog  int           // jobs already queued when they were
		lastSync time.Duration // how long the last sync took
		timer    = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for job := range s.syncq {
		jobs = append(jobs[:0], job)
		n := len(job.reqs)
		barrier := job.barrier != nil
		more := func(j syncJob) {
			jobs = append(jobs, j)
			n += len(j.reqs)
			barrier = barrier || j.barrier != nil
		}
		open := true
	drain:
		for {
			select {
			case j, ok := <-s.syncq:
				if !ok {
					open = false
					break drain
				}
				more(j)
			default:
				break drain
			}
		}
		if target := released + backlog; open && !barrier && n < target && lastSync > 0 {
			timer.Reset(min(lastSync/2, maxGroupWait))
			waitStart := time.Now()
		wait:
			for n < target && !barrier {
				select {
				case j, ok := <-s.syncq:
					if !ok {
						break wait
					}
					more(j)
				case <-timer.C:
					s.stats.waitTimeouts.Add(1)
					break wait
				}
			}
			timer.Stop()
			s.stats.waitNanos.Add(uint64(time.Since(waitStart)))
		}
		if s.failed.Load() == nil {
			start := time.Now()
			var last *segment
			for _, j := range jobs {
				if j.seg == nil || j.seg == last {
					continue
				}
				if err := s.syncSeg(j.seg); err != nil {
					s.fail(err)
					break
				}
				last = j.seg
			}
			if last != nil {
				lastSync = time.Since(start)
			}
		}
		f := s.failed.Load()
		var covered uint64
		for _, j := range jobs {
			for _, r := range j.reqs {
				if f != nil {
					r.err = *f
				}
				s.reply(r)
			}
			if j.barrier != nil {
				close(j.barrier)
			}
			covered = max(covered, j.upTo)
		}
		released, backlog = n, len(s.syncq)
		clear(jobs)
		if f == nil && covered > 0 {
			s.reclaim(true, covered)
		}
	}
}

// barrier waits until the syncer has synced and answered every job
// handed to it so far.
func (s *Store) barrier() {
	ch := make(chan struct{})
	s.syncq <- syncJob{barrier: ch}
	<-ch
}

// validateLocked checks that b acknowledges only live messages, once each.
func (s *Store) validateLocked(b *store.Batch) error {
	for i, seq := range b.Acks {
		if _, ok := s.index[seq]; !ok {
			return fmt.Errorf("journal: ack of unknown message %d", seq)
		}
		if len(b.Acks) <= 16 {
			for _, prev := range b.Acks[:i] {
				if prev == seq {
					return fmt.Errorf("journal: message %d acknowledged twice in one batch", seq)
				}
			}
		}
	}
	if len(b.Acks) > 16 {
		seen := make(map[uint64]struct{}, len(b.Acks))
		for _, seq := range b.Acks {
			if _, dup := seen[seq]; dup {
				return fmt.Errorf("journal: message %d acknowledged twice in one batch", seq)
			}
			seen[seq] = struct{}{}
		}
	}
	return nil
}

// encodeLocked appends b's frame to buf, assigns seqs and applies b to the
// index. The index may so run ahead of the disk; if the write then fails,
// the store has failed and the index no longer matters.
func (s *Store) encodeLocked(buf []byte, b *store.Batch) []byte {
	frameOff := s.off + int64(len(buf))
	first := s.nextSeq
	buf, s.offs = appendBatch(buf, b, first, s.offs[:0])
	for i, m := range b.Adds {
		m.Seq = first + uint64(i)
		m.Size = len(m.Body)
		s.index[m.Seq] = entry{seg: s.active.id, off: frameOff + s.offs[i], size: int64(m.Size)}
		s.live += int64(m.Size)
	}
	s.active.live += len(b.Adds)
	s.encoded++
	s.nextSeq += uint64(len(b.Adds))
	for _, seq := range b.Acks {
		e := s.index[seq]
		delete(s.index, seq)
		s.segByID[e.seg].live--
		s.live -= e.size
	}
	return buf
}

// flush writes buf at the end of the active segment.
func (s *Store) flush(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := s.active.f.WriteAt(buf, s.off)
	s.stats.bytes.Add(uint64(max(n, 0)))
	s.unsynced = true
	if err != nil {
		return fmt.Errorf("write %s at %d: %w", s.active.path, s.off, err)
	}
	s.off += int64(n)
	s.mu.Lock()
	s.active.end = s.off
	s.mu.Unlock()
	return nil
}

// syncSeg makes seg durable. It is never retried: after a failed fsync
// the kernel may have dropped the dirty pages.
func (s *Store) syncSeg(seg *segment) error {
	t := time.Now()
	err := seg.f.Sync()
	s.stats.fsyncs.Add(1)
	s.stats.fsyncNanos.Add(uint64(time.Since(t)))
	if err != nil {
		return fmt.Errorf("sync %s: %w", seg.path, err)
	}
	if s.syncq == nil && seg == s.active {
		s.unsynced = false
	}
	return nil
}

// roll seals the active segment and starts the preallocated next one.
func (s *Store) roll() error {
	// An older segment must be complete on disk before a newer one holds
	// records: recovery calls damage in an older segment corruption.
	if s.syncq != nil {
		s.barrier()
		if f := s.failed.Load(); f != nil {
			return *f
		}
	} else if s.unsynced {
		if err := s.syncSeg(s.active); err != nil {
			return err
		}
	}
	r := <-s.next
	s.next = nil
	if r.err != nil {
		return fmt.Errorf("preallocate segment: %w", r.err)
	}
	seg := r.seg
	hdr := appendSegmentHeader(nil, seg.id, s.nextSeq)
	if _, err := seg.f.WriteAt(hdr, 0); err != nil {
		seg.f.Close()
		return fmt.Errorf("write segment header %s: %w", seg.path, err)
	}
	s.stats.bytes.Add(uint64(len(hdr)))
	s.mu.Lock()
	seg.end = int64(len(hdr))
	s.segs = append(s.segs, seg)
	s.segByID[seg.id] = seg
	s.mu.Unlock()
	s.active, s.off, s.unsynced = seg, seg.end, true
	s.startPrealloc(seg.id + 1)
	s.reclaim(false, 0) // everything written before the roll is durable
	return nil
}

// reclaim deletes the oldest segments while every message added in them
// is acknowledged, durably: it runs when everything applied to the index
// is on disk, which the syncer checks by comparing the batches its sync
// covered (covered) with those encoded (if check is set). It deletes
// strictly from the oldest, so an ack is never deleted before the message
// it acknowledges.
func (s *Store) reclaim(check bool, covered uint64) {
	for {
		s.mu.Lock()
		if s.noReclaim || len(s.segs) < 2 || s.segs[0].live > 0 || check && covered != s.encoded {
			s.mu.Unlock()
			return
		}
		seg := s.segs[0]
		s.segs = s.segs[1:]
		delete(s.segByID, seg.id)
		s.mu.Unlock()
		seg.f.Close()
		if err := s.fs.Remove(seg.path); err != nil {
			s.mu.Lock()
			s.noReclaim = true
			s.mu.Unlock()
			s.logf("journal: reclaim %s: %v; reclamation stopped until restart", seg.path, err)
			return
		}
		s.stats.reclaimed.Add(1)
		if err := s.fs.SyncDir(s.dir); err != nil {
			s.logf("journal: reclaim %s: sync directory: %v", seg.path, err)
			return
		}
	}
}

// Load implements store.Loader: it reads the body of a live message.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("journal: load message %d from %s at %d: %w", seq, seg.path, e.off, err)
}

func (s *Store) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

// Stats implements store.Statser. group_commits_total counts the writes
// of the writer goroutine (each carrying group_commit_batches_total /
// group_commits_total batches on average); writes_total / fsyncs_total is
// how many batches one fdatasync covered on average.
func (s *Store) Stats() map[string]float64 {
	s.mu.Lock()
	live, liveBytes, segs := len(s.index), s.live, len(s.segs)
	s.mu.Unlock()
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
		"segments_reclaimed_total":      float64(st.reclaimed.Load()),
		"live_messages":                 float64(live),
		"live_bytes":                    float64(liveBytes),
		"recovery_torn_bytes_total":     float64(st.tornBytes.Load()),
		"recovery_repaired_bytes_total": float64(st.repairedByte.Load()),
		"group_wait_seconds_total":      float64(st.waitNanos.Load()) / 1e9,
		"group_wait_timeouts_total":     float64(st.waitTimeouts.Load()),
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
