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
	// maxGroupWait bounds how long the writer waits for writers to come
	// back before a sync (see take).
	maxGroupWait = time.Millisecond
	// lazyAckDelay bounds how long lazy acks (WriteAcksLazy) stay unsynced
	// when no batch needing a sync follows them.
	lazyAckDelay = 10 * time.Millisecond
)

// run is the writer goroutine: it alone writes and syncs segments.
//
// Under SyncBatch it takes every batch waiting, writes them with one
// pwrite, syncs once and answers them: group commit. Batches arriving
// while its fdatasync runs wait in s.reqs, unwritten, and make up the
// next group; nothing wakes the writer for them.
func (s *Store) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.Sync.Mode == SyncInterval {
		t := time.NewTicker(s.opts.Sync.Interval)
		defer t.Stop()
		tick = t.C
	}
	s.lazyTimer, s.waitTimer = stoppedTimer(), stoppedTimer()
	defer s.lazyTimer.Stop()
	group := make([]*request, 0, 64)
	for {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				s.syncUnsynced()
				return
			}
			group, open := s.take(group[:0], r)
			s.commit(group)
			clear(group)
			if !open {
				s.syncUnsynced()
				return
			}
		case <-tick:
			s.syncUnsynced()
		case <-s.lazyC:
			// Lazy acks written this long ago and no sync since.
			s.lazyC = nil
			s.syncUnsynced()
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// syncUnsynced syncs the active segment if it has unsynced writes, then
// reclaims what is reclaimable.
func (s *Store) syncUnsynced() {
	if s.failed.Load() != nil {
		return
	}
	if s.unsynced {
		if err := s.syncSeg(s.active); err != nil {
			s.fail(err)
			return
		}
	}
	s.reclaim()
}

// take makes a group, in group's space, of first and the batches waiting
// behind it in s.reqs: none under SyncAlways; under the other policies every batch
// waiting, up to maxGroupBatches or maxGroupBytes. It returns the group
// and whether s.reqs is still open.
//
// Under SyncBatch it may also wait a little. Writers answered by one sync
// come straight back with their next batch; a sync started with only the
// first few back would leave the rest a whole sync to wait, and groups
// would shrink. So, when the group has fewer batches needing a sync than
// the last sync answered, take waits for more: at most half the last
// sync's duration (and maxGroupWait), and not at all for a group of lazy
// acks alone, which needs no sync.
func (s *Store) take(group []*request, first *request) ([]*request, bool) {
	if s.opts.Sync.Mode == SyncAlways {
		return append(group, first), true
	}
	bytes, need := int64(0), 0
	add := func(r *request) {
		group = append(group, r)
		bytes += r.size
		if !r.lazy {
			need++
		}
	}
	full := func() bool { return len(group) >= maxGroupBatches || bytes >= maxGroupBytes }
	add(first)
drain:
	for !full() {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return group, false
			}
			add(r)
		default:
			break drain
		}
	}
	if s.opts.Sync.Mode != SyncBatch || need == 0 || need >= s.released || s.lastSync <= 0 {
		return group, true
	}
	s.waitTimer.Reset(min(s.lastSync/2, maxGroupWait))
	defer s.waitTimer.Stop()
	start := time.Now()
	defer func() { s.stats.waitNanos.Add(uint64(time.Since(start))) }()
	for need < s.released && !full() {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return group, false
			}
			add(r)
		case <-s.waitTimer.C:
			s.stats.waitTimeouts.Add(1)
			return group, true
		}
	}
	return group, true
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

// complete finishes batches written to seg: under SyncBatch and
// SyncAlways they are synced, then answered; under the other policies
// they are answered at once. Under SyncBatch lazy acks are answered
// before the sync and need none of their own.
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
	synced := false // and nothing failed
	switch s.opts.Sync.Mode {
	case SyncBatch:
		// Lazy acks are answered now: they promise no durability (a lost
		// ack only redelivers). They stay unsynced until the next sync,
		// lazyAckDelay at most. reqs is commit's fresh slice: filtered in
		// place.
		wait := reqs[:0]
		for _, r := range reqs {
			if r.lazy {
				s.reply(r)
			} else {
				wait = append(wait, r)
			}
		}
		if len(wait) == 0 {
			s.stats.lazyRounds.Add(1)
			if s.lazyC == nil {
				s.lazyTimer.Reset(s.lazyDelay())
				s.lazyC = s.lazyTimer.C
			}
			return
		}
		reqs = wait
		fallthrough
	case SyncAlways:
		start := time.Now()
		err := s.syncSeg(seg)
		if err != nil {
			err = s.fail(err)
			for _, r := range reqs {
				r.err = err
			}
		}
		s.lastSync, s.released = time.Since(start), len(reqs)
		synced = err == nil
	}
	for _, r := range reqs {
		s.reply(r)
	}
	if synced {
		s.reclaim() // answered first, reclaimed after
	}
}

func (s *Store) lazyDelay() time.Duration {
	if s.opts.lazyAckDelay > 0 {
		return s.opts.lazyAckDelay
	}
	return lazyAckDelay
}

func (s *Store) reply(r *request) {
	if r.err == nil {
		s.stats.writes.Add(1)
	}
	r.done <- r.err
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
	if seg == s.active {
		s.unsynced = false
		if s.lazyC != nil { // the lazy acks are synced now
			s.lazyTimer.Stop()
			s.lazyC = nil
		}
	}
	return nil
}

// roll seals the active segment and starts the preallocated next one.
func (s *Store) roll() error {
	// An older segment must be complete on disk before a newer one holds
	// records: recovery calls damage in an older segment corruption.
	if s.unsynced {
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
		s.reclaim()
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
	s.reclaim() // everything written before the roll is durable
	s.compact()
	return nil
}

// reclaim deletes the oldest segments while every message added in them
// is acknowledged, durably: it runs only when everything written is on
// disk (after a sync, or at a roll). It deletes strictly from the oldest,
// so an ack is never deleted before the message it acknowledges.
func (s *Store) reclaim() {
	for {
		s.mu.Lock()
		if s.noReclaim || len(s.segs) < 2 || s.segs[0].live > 0 {
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
