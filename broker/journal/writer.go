package journal

import (
	"fmt"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// Group commit limits: one write() carries at most this many batches or
// (roughly) bytes, so a burst cannot make one waiter wait for all.
const (
	maxGroupBatches = 1024
	maxGroupBytes   = 8 << 20
	// maxGroupWait bounds how long the syncer waits for writers to come
	// back before a sync (see syncLoop).
	maxGroupWait = time.Millisecond
	// lazyAckDelay bounds how long lazy acks (WriteAcksLazy) stay unsynced
	// when no batch needing a sync follows them.
	lazyAckDelay = 10 * time.Millisecond
)

// syncJob asks the syncer to make seg durable and then answer reqs.
type syncJob struct {
	seg     *segment
	reqs    []*request
	upTo    uint64        // Store.encoded after these batches
	barrier chan struct{} // closed once every earlier job is done
	lazy    bool          // only lazy acks, already answered: no sync needed now
}

// run is the writer goroutine: it alone writes segments (and, unless a
// syncer runs, syncs them).
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
			s.tap(written)
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
		if r.err == nil && r.keep {
			r.err = s.validateSeqsLocked(r.b)
		}
		if r.err == nil {
			buf = s.encodeLocked(buf, r)
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
	s.tap(written)
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
		// Lazy acks are answered now: they promise no durability (a lost
		// ack only redelivers). Their job still tells the syncer that seg
		// has unsynced records, so it syncs them later. reqs is commit's
		// fresh slice, handed over: filtered in place.
		wait := reqs[:0]
		for _, r := range reqs {
			if r.lazy {
				s.reply(r)
			} else {
				wait = append(wait, r)
			}
		}
		s.syncq <- syncJob{seg: seg, reqs: wait, upTo: s.encoded, lazy: len(wait) == 0}
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
		// Lazy acks written but not synced yet (jobs with lazy set): the
		// segments holding them, oldest first, and Store.encoded after
		// them. The next sync covers them; lazyTimer bounds the wait.
		lazySegs  []*segment
		lazyUpTo  uint64
		lazyTimer = time.NewTimer(time.Hour)
		toSync    []*segment
	)
	timer.Stop()
	lazyTimer.Stop()
	addSeg := func(segs []*segment, seg *segment) []*segment {
		if seg == nil || len(segs) > 0 && segs[len(segs)-1] == seg {
			return segs
		}
		return append(segs, seg)
	}
	for {
		var (
			job     syncJob
			ok, due bool
		)
		if len(lazySegs) > 0 {
			select {
			case job, ok = <-s.syncq:
			case <-lazyTimer.C:
				ok, due = true, true
			}
		} else {
			job, ok = <-s.syncq
		}
		if !ok {
			// Closing: what lazy acks are left are synced like the rest.
			if len(lazySegs) > 0 && s.failed.Load() == nil {
				for _, seg := range lazySegs {
					if err := s.syncSeg(seg); err != nil {
						s.fail(err)
						break
					}
				}
			}
			return
		}
		jobs = jobs[:0]
		n, barrier, need := 0, false, due
		more := func(j syncJob) {
			jobs = append(jobs, j)
			n += len(j.reqs)
			barrier = barrier || j.barrier != nil
			need = need || !j.lazy
		}
		if !due {
			more(job)
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
		if !need && open {
			// Only lazy acks, already answered: no sync for them alone.
			if len(lazySegs) == 0 {
				d := s.opts.lazyAckDelay
				if d <= 0 {
					d = lazyAckDelay
				}
				lazyTimer.Reset(d)
			}
			for _, j := range jobs {
				lazySegs = addSeg(lazySegs, j.seg)
				lazyUpTo = max(lazyUpTo, j.upTo)
			}
			s.stats.lazyRounds.Add(1)
			clear(jobs)
			continue
		}
		if target := released + backlog; open && !barrier && !due && n < target && lastSync > 0 {
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
		toSync = append(toSync[:0], lazySegs...)
		for _, j := range jobs {
			toSync = addSeg(toSync, j.seg)
		}
		if s.failed.Load() == nil && len(toSync) > 0 {
			start := time.Now()
			for _, seg := range toSync {
				if err := s.syncSeg(seg); err != nil {
					s.fail(err)
					break
				}
			}
			lastSync = time.Since(start)
		}
		f := s.failed.Load()
		covered := lazyUpTo
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
		clear(lazySegs)
		lazySegs, lazyUpTo = lazySegs[:0], 0
		lazyTimer.Stop()
		released, backlog = n, len(s.syncq)
		clear(jobs)
		clear(toSync)
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
func (s *Store) encodeLocked(buf []byte, r *request) []byte {
	b := r.b
	frameOff := s.off + int64(len(buf))
	first := s.nextSeq
	if r.keep {
		first = 0 // appendBatch keeps the adds' seqs
	}
	if len(b.Adds) > 0 || len(b.Acks) > 0 {
		buf, s.offs = appendBatch(buf, b, first, s.offs[:0])
	}
	for i, m := range b.Adds {
		if !r.keep {
			m.Seq = s.nextSeq + uint64(i)
		}
		m.Size = len(m.Body)
		s.linkLocked(m.Seq, entry{seg: s.active.id, off: frameOff + s.offs[i], size: int32(m.Size), rec: int32(addSize(m))})
	}
	s.encoded++
	if n := len(b.Adds); n > 0 {
		s.nextSeq = b.Adds[n-1].Seq + 1
	}
	s.nextSeq = max(s.nextSeq, r.next)
	for _, seq := range b.Acks {
		s.unlinkLocked(seq)
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
	s.active.size = max(s.active.size, s.off)
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
	s.preallocBytes.Store(0)
	if r.err != nil {
		// Preallocation writes no record, so trying it again is safe: free
		// what can be freed (everything written is durable here) and retry
		// once, e.g. after a full disk.
		s.logf("journal: preallocate next segment: %v; retrying", r.err)
		s.reclaim(false, 0)
		id := s.active.id + 1
		if r.seg, r.err = s.prepare(id); r.err != nil {
			return fmt.Errorf("preallocate segment: %w", r.err)
		}
	}
	seg := r.seg
	hdr := s.head(seg, s.nextSeq, s.active.id, s.off)
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
	s.compact()
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
		oldest := s.segs[0].id
		s.mu.Unlock()
		seg.f.Close()
		// The manifest stops naming the segment before it goes, so that a
		// missing segment it names is always a loss.
		err := s.writeManifest(func(m *manifest) { m.oldest = oldest })
		if err == nil {
			err = s.fs.Remove(seg.path)
		}
		if err != nil {
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
