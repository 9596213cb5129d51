package journal

import (
	"fmt"
	"sort"

	"github.com/lossbench/lossbench/broker/store"
)

// Compaction: one unacknowledged message would otherwise keep its segment,
// and so (since segments go strictly from the oldest) every later one, on
// disk. At each roll the writer rewrites the live messages of the oldest
// segments that are mostly dead into the new segment, as a move record
// that keeps their seqs; once that is durable, the old segments hold
// nothing live and reclaim deletes them. Disk use so tracks the live data.
//
// Crash safety: a move is a record in the log like any batch. Until it is
// durable the old segment is not deleted (reclaim waits for the sync that
// covers it), so after a crash a message is found in its old place, in
// the new one, or both; replay takes the later one. An ack of a moved
// message names its seq, which the move keeps, and is written after the
// move in log order (the writer encodes both), so it applies after it.
const (
	// compactLive: the oldest segments are compacted when at most
	// 1/compactLive of the bytes of the records written in them are live,
	// or, whatever they hold, while that is so of the sealed segments
	// together. A roll adds a segment and so removes at least one while
	// the sealed segments hold more dead records than live ones: disk use
	// stays under about twice the live data, plus a few segments. A roll
	// moves at most what fits in the new segment.
	compactLive = 2
	// compactSegments bounds the segments compacted at one roll: the
	// writer reads them whole while producers wait.
	compactSegments = 2
	// compactAge: a segment is compacted only once this many sealed
	// segments are newer, so that consumers a little behind the producers
	// (the segments they are draining are partly acknowledged) do not have
	// their messages moved just before they ack them.
	compactAge = 2
)

// linkLocked records that seq's body lives at e.
func (s *Store) linkLocked(seq uint64, e entry) {
	s.index[seq] = e
	seg := s.segByID[e.seg]
	seg.live++
	seg.liveBytes += int64(e.rec)
	seg.recBytes += int64(e.rec)
	s.live += int64(e.size)
	s.liveRec += int64(e.rec)
}

// unlinkLocked forgets seq's place, if it has one, and returns it.
func (s *Store) unlinkLocked(seq uint64) (entry, bool) {
	e, ok := s.index[seq]
	if !ok {
		return e, false
	}
	delete(s.index, seq)
	if seg := s.segByID[e.seg]; seg != nil {
		seg.live--
		seg.liveBytes -= int64(e.rec)
	}
	s.live -= int64(e.size)
	s.liveRec -= int64(e.rec)
	return e, true
}

// applyMove (replay) moves the messages of a move record at off in seg
// here, or adds them if their old segment was already reclaimed.
func (s *Store) applyMove(seg *segment, off int64, p []byte) *CorruptionError {
	next := s.nextSeq
	err := decodeBatch(p, nil, func(a *addRec) error {
		if a.seq >= next {
			return fmt.Errorf("moved message %d was never added (next seq %d)", a.seq, next)
		}
		return nil
	})
	if err != nil {
		return s.corrupt(seg, off, "move: %v", err)
	}
	payloadOff := off + frameHeaderSize + 1
	_ = decodeBatch(p, nil, func(a *addRec) error {
		s.unlinkLocked(a.seq)
		s.linkLocked(a.seq, a.entry(seg.id, payloadOff))
		return nil
	})
	seg.moves = true
	return nil
}

// compact runs on the writer right after a roll, with the new segment
// active and empty.
func (s *Store) compact() {
	s.mu.Lock()
	var picks []*segment
	var total, live, written int64
	for _, seg := range s.segs[:len(s.segs)-1] {
		live += seg.liveBytes
		written += seg.recBytes
	}
	wasteful := live*compactLive < written
	for _, seg := range s.segs[:max(len(s.segs)-1-compactAge, 0)] {
		if seg.live == 0 {
			continue // reclaim takes it
		}
		if len(picks) == compactSegments || seg.liveBytes*compactLive > seg.recBytes && !wasteful ||
			total+seg.liveBytes > s.segSize-s.off {
			break
		}
		picks = append(picks, seg)
		total += seg.liveBytes
	}
	s.mu.Unlock()
	if len(picks) == 0 {
		return
	}
	// Only this goroutine changes the index, so what is live now stays
	// live, where it is, until the move is encoded.
	var msgs []*store.Message
	for _, seg := range picks {
		data, err := readAll(seg.f, nil)
		if err != nil {
			s.logf("journal: compact: read %s: %v; not compacted", seg.path, err)
			return
		}
		for off := int64(0); ; {
			st, typ, p, next, _ := parseFrame(data, off)
			if st != frameOK {
				break
			}
			if typ == recBatch || typ == recMove {
				payloadOff := off + frameHeaderSize + 1
				_ = decodeBatch(p, nil, func(a *addRec) error {
					s.mu.Lock()
					e, ok := s.index[a.seq]
					s.mu.Unlock()
					if ok && e.seg == seg.id && e.off == payloadOff+int64(a.bodyOff) {
						msgs = append(msgs, a.message(true))
					}
					return nil
				})
			}
			off = next
		}
	}
	if len(msgs) == 0 {
		return
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].Seq < msgs[j].Seq })
	// Headers and queue names count too: move what fits in the new
	// segment (never roll from here); the rest waits for the next roll.
	for len(msgs) > 0 && s.off+batchFrameSize(&store.Batch{Adds: msgs}) > s.segSize {
		msgs = msgs[:len(msgs)/2]
	}
	if len(msgs) == 0 {
		return
	}
	buf, offs := appendRecord(s.cbuf[:0], recMove, &store.Batch{Adds: msgs}, 0, s.offs[:0])
	s.cbuf = buf[:0]
	frameOff := s.off
	if err := s.flush(buf); err != nil {
		s.fail(err)
		return
	}
	// The index points at the new place only once it is written, so that
	// Load never reads it before.
	s.mu.Lock()
	for i, m := range msgs {
		e, _ := s.unlinkLocked(m.Seq)
		e.seg, e.off = s.active.id, frameOff+offs[i]
		s.linkLocked(m.Seq, e)
	}
	s.active.moves = true
	s.mu.Unlock()
	s.stats.compactedMsgs.Add(uint64(len(msgs)))
	s.stats.compactedSegs.Add(uint64(len(picks)))
	// The old segments go once the move is durable.
	if s.opts.Sync.Mode == SyncBatch || s.opts.Sync.Mode == SyncAlways {
		if err := s.syncSeg(s.active); err != nil {
			s.fail(err)
			return
		}
		s.reclaim()
	}
}
