package journal

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/lossbench/lossbench/broker/store"
)

// replay reads every segment in order and rebuilds the index; see the
// package doc for what it does with missing segments, torn tails and
// corruption. Files it drops are listed in s.dropped for Open to remove
// once the manifest no longer names them.
func (s *Store) replay() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("journal: list %s: %w", s.dir, err)
	}
	var ids []uint64
	for _, name := range names {
		if id, ok := parseSegmentName(name); ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	man, found, err := s.readManifest()
	if err != nil {
		if !s.opts.Repair {
			return err
		}
		s.logf("journal: repair: %v: ignored, rewritten from the segments found", err)
	}
	if found && man.clean {
		s.clean = &man
	}
	missing := missingSegments(ids, man, found)
	if len(missing) > 0 && !s.opts.Repair {
		return &MissingSegmentsError{Dir: s.dir, Missing: missing}
	}
	// newestMissing: segments newer than every one found are missing, so
	// the last found is sealed, not the one a crash could have torn.
	newestMissing := len(missing) > 0 && (len(ids) == 0 || missing[len(missing)-1].First > ids[len(ids)-1])
	for _, id := range ids {
		path := filepath.Join(s.dir, segmentName(id))
		f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("journal: open segment: %w", err)
		}
		seg := &segment{id: id, path: path, f: f}
		s.segs = append(s.segs, seg)
		s.segByID[id] = seg
		s.lastID = id
	}
	if found {
		s.lastID = max(s.lastID, man.newest)
	}

	// Preallocated segments never used are all zero: drop them from the end.
	var buf []byte
	for len(s.segs) > 0 && !newestMissing {
		seg := s.segs[len(s.segs)-1]
		buf, err = readAll(seg.f, buf)
		if err != nil {
			return fmt.Errorf("journal: read %s: %w", seg.path, err)
		}
		if !allZero(buf) {
			break
		}
		s.dropSegment(seg)
	}

	cuts, err := s.epochCuts()
	if err != nil {
		return err
	}
	for i := 0; i < len(s.segs); i++ {
		seg := s.segs[i]
		last := i == len(s.segs)-1 && !newestMissing
		buf, err = readAll(seg.f, buf)
		if err != nil {
			return fmt.Errorf("journal: read %s: %w", seg.path, err)
		}
		seg.size = int64(len(buf))
		data := buf
		if c, ok := cuts[seg.id]; ok {
			data = s.cutAt(seg, buf, c)
			if last {
				last, s.fresh = false, true
			}
		}
		end, err := s.replaySegment(seg, data, last)
		if err != nil {
			return err
		}
		if _, evidence := cuts[seg.id]; evidence {
			// What follows the cut is split-brain evidence, reported;
			// the clean shutdown is the newer epoch's.
		} else if cerr := s.checkClean(seg, buf, end); cerr != nil {
			if !s.opts.Repair {
				return cerr
			}
			s.logf("journal: repair: %v: going on", cerr)
		}
		if last {
			end, err = s.truncateTorn(seg, buf, end)
			if err != nil {
				return err
			}
		}
		seg.end = end
		seg.endSeq = s.nextSeq
		if end == 0 { // a torn segment header: the segment never held a record
			s.dropSegment(seg)
		}
	}
	if c := s.clean; c != nil && s.segByID[c.cleanSeg] == nil && len(missing) == 0 {
		cerr := &CorruptionError{File: filepath.Join(s.dir, segmentName(c.cleanSeg)),
			Reason: fmt.Sprintf("no log in the segment where the clean shutdown recorded its end (offset %d)", c.cleanEnd)}
		if !s.opts.Repair {
			return cerr
		}
		s.logf("journal: repair: %v: going on", cerr)
	}
	s.salvage.report(s)
	if len(missing) > 0 {
		return s.fillMissing(missing)
	}
	return nil
}

// cut is where a segment's log ends for replay: past it, frames of the
// segment's epoch were written after a newer epoch took over.
type cut struct {
	at    int64
	newer int64 // the epoch that took over
}

// epochCuts reads every segment's epoch record and finds the split-brain
// cuts: a segment whose successor's newer epoch recorded where the log
// ended when it took over ends there; a segment of an older epoch than
// one before it was written after the takeover, and holds nothing to
// replay.
func (s *Store) epochCuts() (map[uint64]cut, error) {
	cuts := map[uint64]cut{}
	var newest int64
	var head [segmentHeaderFrameSize + 64]byte
	for i, seg := range s.segs {
		n, err := seg.f.ReadAt(head[:], 0)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("journal: read %s: %w", seg.path, err)
		}
		epochEnd := int64(0)
		if st, typ, _, next, _ := parseFrame(head[:n], 0); st == frameOK && typ == recSegmentHeader {
			if st, typ, p, next2, _ := parseFrame(head[:n], next); st == frameOK && typ == recEpoch {
				if e, err := decodeEpoch(p); err == nil {
					seg.ep, epochEnd = e, next2
				}
			}
		}
		switch {
		case seg.ep.epoch < newest && epochEnd > 0:
			cuts[seg.id] = cut{at: epochEnd, newer: newest}
		case i > 0 && seg.ep.epoch > 0 && seg.ep.prevID == s.segs[i-1].id && seg.ep.epoch > s.segs[i-1].ep.epoch:
			if _, done := cuts[seg.ep.prevID]; !done {
				cuts[seg.ep.prevID] = cut{at: seg.ep.prevEnd, newer: seg.ep.epoch}
			}
		}
		newest = max(newest, seg.ep.epoch)
	}
	return cuts, nil
}

// cutAt returns seg's data up to c, reporting any frame after it as
// split-brain evidence: it is not replayed, and stays on disk.
func (s *Store) cutAt(seg *segment, data []byte, c cut) []byte {
	if c.at >= int64(len(data)) {
		return data
	}
	rest := data[c.at:]
	if allZero(rest) {
		return data[:c.at]
	}
	ev := SplitBrain{File: seg.path, From: c.at, To: c.at + int64(lastNonZero(rest)), Epoch: seg.ep.epoch, Newer: c.newer}
	for off := c.at; ; {
		st, _, _, next, _ := parseFrame(data, off)
		if st != frameOK {
			break
		}
		ev.Frames++
		off = next
	}
	s.splitBrain = append(s.splitBrain, ev)
	s.logf("journal: SPLIT-BRAIN EVIDENCE: %v; not replayed (two brokers wrote to this journal: check the shared storage's locks and the lease timings)", ev)
	return data[:c.at]
}

// checkClean checks a replayed segment against a clean shutdown recorded
// in the manifest: the log ends exactly where Close left it.
func (s *Store) checkClean(seg *segment, data []byte, end int64) *CorruptionError {
	c := s.clean
	switch {
	case c == nil || seg.id < c.cleanSeg:
		return nil
	case seg.id > c.cleanSeg:
		return s.corrupt(seg, 0, "data in a segment after the clean shutdown's last one (%s)", segmentName(c.cleanSeg))
	case end != c.cleanEnd:
		return s.corrupt(seg, min(end, c.cleanEnd), "the log ends at offset %d, but the clean shutdown recorded its end at %d", end, c.cleanEnd)
	}
	return nil
}

// maxPlaceholders bounds how many missing segments repair replaces.
const maxPlaceholders = 1024

// fillMissing (repair) reports what the missing segments held and puts an
// empty segment in place of each, so that the journal is whole again.
func (s *Store) fillMissing(missing []SegmentRange) error {
	var n uint64
	for _, r := range missing {
		n += r.Last - r.First + 1
		if n > maxPlaceholders || r.Last < r.First {
			return &MissingSegmentsError{Dir: s.dir, Missing: missing,
				Why: fmt.Sprintf("more than %d segments missing: too many to repair", maxPlaceholders)}
		}
	}
	for _, r := range missing {
		var before, after *segment
		for _, seg := range s.segs {
			if seg.id < r.First {
				before = seg
			} else if after == nil && seg.id > r.Last {
				after = seg
			}
		}
		lost := "an unknown number of messages"
		switch {
		case before != nil && after != nil && after.firstSeq > before.endSeq:
			lost = fmt.Sprintf("%d messages (seqs %d to %d)", after.firstSeq-before.endSeq, before.endSeq, after.firstSeq-1)
		case before != nil && after != nil:
			lost = "no messages, only acknowledgements (acknowledged messages may be delivered again)"
		case after != nil:
			lost = fmt.Sprintf("the messages below seq %d that were not acknowledged", after.firstSeq)
		case before != nil:
			lost = fmt.Sprintf("every message from seq %d on", before.endSeq)
		}
		s.logf("journal: repair: segment %s missing from %s: lost %s; replaced by empty segments", r, s.dir, lost)
		nextSeq := s.nextSeq
		if after != nil {
			nextSeq = after.firstSeq
		}
		for id := r.First; id <= r.Last; id++ {
			path := filepath.Join(s.dir, segmentName(id))
			f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("journal: repair: create %s: %w", path, err)
			}
			seg := &segment{id: id, path: path, f: f}
			if err := s.writeHeader(seg, nextSeq, 0, 0); err != nil {
				return err
			}
			seg.endSeq = nextSeq
			at := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].id > id })
			s.segs = append(s.segs[:at], append([]*segment{seg}, s.segs[at:]...)...)
			s.segByID[id] = seg
			s.lastID = max(s.lastID, id)
		}
	}
	return nil
}

// dropSegment closes seg, which must be the last in s.segs, and lists its
// file for removal.
func (s *Store) dropSegment(seg *segment) {
	seg.f.Close()
	s.segs = s.segs[:len(s.segs)-1]
	delete(s.segByID, seg.id)
	s.dropped = append(s.dropped, seg.path)
}

func (s *Store) corrupt(seg *segment, off int64, format string, args ...any) *CorruptionError {
	return &CorruptionError{File: seg.path, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// replaySegment applies seg's records to the index and returns where its
// valid frames end. Damage a torn tail cannot explain is a
// *CorruptionError, unless Options.Repair is set: then the damaged frame
// is skipped (salvage.go) and replay goes on with the next valid one.
func (s *Store) replaySegment(seg *segment, data []byte, last bool) (int64, error) {
	st, typ, p, next, reason := parseFrame(data, 0)
	var herr *CorruptionError
	switch {
	case st != frameOK:
		if st == frameEnd {
			reason = "no segment header"
		}
		if herr = s.tailError(seg, data, 0, last, reason); herr == nil {
			return 0, nil // a torn header: the segment never held a record
		}
	case typ != recSegmentHeader:
		herr = s.corrupt(seg, 0, "first frame has type %d, not a segment header", typ)
	default:
		hdr, err := decodeSegmentHeader(p)
		switch {
		case err != nil:
			herr = s.corrupt(seg, 0, "bad segment header")
		case hdr.id != seg.id:
			herr = s.corrupt(seg, 0, "segment header names segment %d", hdr.id)
		case hdr.nextSeq > maxSeq:
			herr = s.corrupt(seg, 0, "segment header's next sequence number %d out of range", hdr.nextSeq)
		default:
			s.salvage.seen(s, hdr.nextSeq)
			s.nextSeq = max(s.nextSeq, hdr.nextSeq)
			seg.firstSeq = hdr.nextSeq
		}
	}
	off := next
	if herr != nil {
		if !s.opts.Repair {
			return 0, herr
		}
		var err error
		if off, err = s.restampHeader(seg, data, herr); err != nil {
			return 0, err
		}
	}
	for off >= 0 {
		st, typ, p, next, reason = parseFrame(data, off)
		var cerr *CorruptionError
		switch {
		case st == frameEnd && allZero(tail(data, off)):
			return off, nil
		case st == frameEnd:
			cerr = s.tailError(seg, data, off, last, "data after the end of the log")
		case st == frameBad:
			cerr = s.tailError(seg, data, off, last, reason)
		case typ == recSkip || typ == recEpoch: // epochs: read by epochCuts
			off = next
			continue
		case typ == recMove:
			if cerr = s.applyMove(seg, off, p); cerr == nil {
				off = next
				continue
			}
		case typ != recBatch:
			cerr = s.corrupt(seg, off, "unexpected record type %d", typ)
		default:
			if cerr = s.applyBatch(seg, off, p); cerr == nil {
				off = next
				continue
			}
		}
		if cerr == nil {
			return off, nil // a torn tail, for truncateTorn
		}
		if !s.opts.Repair {
			return off, cerr
		}
		resume := next // a whole frame whose record is bad
		if st != frameOK {
			resume = resync(data, off)
		}
		end, err := s.skip(seg, data, off, resume, cerr)
		if err != nil {
			return 0, err
		}
		if resume < 0 {
			return end, nil
		}
		off = resume
	}
	return off, nil
}

// applyBatch checks the batch at off whole and then applies it.
func (s *Store) applyBatch(seg *segment, off int64, p []byte) *CorruptionError {
	want := s.nextSeq
	err := decodeBatch(p, nil, func(a *addRec) error {
		if err := checkSeq(a.seq, want); err != nil {
			return err
		}
		want = a.seq + 1
		return nil
	})
	if err != nil {
		return s.corrupt(seg, off, "batch: %v", err)
	}
	payloadOff := off + frameHeaderSize + 1
	_ = decodeBatch(p, func(seq uint64) {
		s.unlinkLocked(seq)
	}, func(a *addRec) error {
		s.salvage.seen(s, a.seq)
		s.linkLocked(a.seq, a.entry(seg.id, payloadOff))
		s.nextSeq = a.seq + 1
		return nil
	})
	return nil
}

// tailError decides whether damage at off is a torn tail (nil: the last
// segment, and no valid frame follows) or corruption.
func (s *Store) tailError(seg *segment, data []byte, off int64, last bool, reason string) *CorruptionError {
	if !last {
		return s.corrupt(seg, off, "%s (in a sealed segment)", reason)
	}
	if s.clean != nil {
		return s.corrupt(seg, off, "%s (after a clean shutdown, which leaves no torn tail)", reason)
	}
	if v := findValidFrame(data, off+frameAlign); v >= 0 {
		return s.corrupt(seg, off, "%s, with a valid frame at offset %d after it", reason, v)
	}
	return nil
}

func tail(data []byte, off int64) []byte { return data[min(off, int64(len(data))):] }

// findValidFrame returns the offset of the first valid frame at or after
// from, or -1.
func findValidFrame(data []byte, from int64) int64 {
	for off := align(from); off+frameHeaderSize < int64(len(data)); off += frameAlign {
		if allZero(data[off : off+frameHeaderSize]) {
			continue
		}
		if t := data[off+frameHeaderSize]; t != recBatch && t != recSegmentHeader && t != recSkip && t != recMove {
			continue
		}
		if st, _, _, _, _ := parseFrame(data, off); st == frameOK {
			return off
		}
	}
	return -1
}

// truncateTorn zeroes whatever follows the valid frames of the last
// segment (a torn tail: replaySegment found no valid frame in it), so the
// zero length word that ends the log is back where new frames will go.
func (s *Store) truncateTorn(seg *segment, data []byte, end int64) (int64, error) {
	if size := int64(len(data)); size < end {
		if s.readOnly {
			return end, nil
		}
		// The file ends inside the last frame's padding (only a file the
		// journal did not preallocate can): extend it to the frame boundary.
		if err := seg.f.Truncate(end); err != nil {
			return 0, fmt.Errorf("journal: extend %s: %w", seg.path, err)
		}
		if err := seg.f.Sync(); err != nil {
			return 0, fmt.Errorf("journal: sync %s: %w", seg.path, err)
		}
		return end, nil
	}
	n := int64(lastNonZero(data[end:]))
	if n == 0 {
		return end, nil
	}
	if s.readOnly {
		s.stats.tornBytes.Add(uint64(n))
		return end, nil
	}
	if err := zeroRange(seg, end, n); err != nil {
		return 0, err
	}
	s.stats.tornBytes.Add(uint64(n))
	s.logf("journal: %s: torn tail at offset %d: cleared %d bytes written by an interrupted write", seg.path, end, n)
	return end, nil
}

func zeroRange(seg *segment, off, n int64) error {
	for done := int64(0); done < n; {
		c := min(int64(len(zeros)), n-done)
		if _, err := seg.f.WriteAt(zeros[:c], off+done); err != nil {
			return fmt.Errorf("journal: clear %s at %d: %w", seg.path, off+done, err)
		}
		done += c
	}
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync %s: %w", seg.path, err)
	}
	return nil
}

// Recover implements store.Store: it calls fn for each live message in
// sequence order. Bodies are handed out up to Options.RecoverBodyBudget
// bytes; later messages have Body nil and Size set, for Load. Messages
// compaction moved sit in later segments, out of order: they are read
// first (without bodies) and merged in.
func (s *Store) Recover(ctx context.Context, fn func(*store.Message) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	s.mu.Lock()
	segs := append([]*segment(nil), s.segs...)
	s.mu.Unlock()
	budget := s.opts.RecoverBodyBudget
	var used int64
	emit := func(m *store.Message, body []byte) error {
		withBody := budget < 0 || used+int64(m.Size) <= budget
		if withBody {
			used += int64(m.Size)
			if body == nil && m.Size > 0 {
				var err error
				if body, err = s.Load(ctx, m.Seq); err != nil {
					return err
				}
			}
			m.Body = append([]byte{}, body...)
		}
		return fn(m)
	}
	var moved []*store.Message
	err := s.scanLive(ctx, segs, recMove, func(a *addRec) error {
		moved = append(moved, a.message(false))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(moved, func(i, j int) bool { return moved[i].Seq < moved[j].Seq })
	err = s.scanLive(ctx, segs, recBatch, func(a *addRec) error {
		for len(moved) > 0 && moved[0].Seq < a.seq {
			if err := emit(moved[0], nil); err != nil {
				return err
			}
			moved = moved[1:]
		}
		return emit(a.message(false), a.body)
	})
	if err != nil {
		return err
	}
	for _, m := range moved {
		if err := emit(m, nil); err != nil {
			return err
		}
	}
	return nil
}

// scanLive calls fn, in log order, for each add in a record of type typ
// that is where the index says its message lives.
func (s *Store) scanLive(ctx context.Context, segs []*segment, typ byte, fn func(a *addRec) error) error {
	var buf []byte
	for _, seg := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		end, live, moves := seg.end, seg.live, seg.moves
		s.mu.Unlock()
		if live == 0 || typ == recMove && !moves {
			continue
		}
		if int64(cap(buf)) < end {
			buf = make([]byte, end)
		}
		data := buf[:end]
		n, err := seg.f.ReadAt(data, 0)
		if n != len(data) && err != io.EOF {
			return fmt.Errorf("journal: recover: read %s: %w", seg.path, err)
		}
		data = data[:n]
		for off := int64(segmentHeaderFrameSize); off < end; {
			st, t, p, next, reason := parseFrame(data, off)
			if st == frameEnd {
				break
			}
			if st != frameOK {
				return fmt.Errorf("journal: recover: %s at %d: %s", seg.path, off, reason)
			}
			if t == typ {
				payloadOff := off + frameHeaderSize + 1
				err := decodeBatch(p, nil, func(a *addRec) error {
					s.mu.Lock()
					e, ok := s.index[a.seq]
					s.mu.Unlock()
					if !ok || e.seg != seg.id || e.off != payloadOff+int64(a.bodyOff) {
						return nil // acknowledged, or moved on
					}
					return fn(a)
				})
				if err != nil {
					return err
				}
			}
			off = next
		}
	}
	return nil
}
