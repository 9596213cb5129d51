package journal

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// salvage is what repair did during one replay: the damaged regions it
// skipped and the seqs they held. Seqs are handed out in log order, so
// the seqs a damaged region held are those between the last seq before it
// and the first after it (a later add, or a later segment header's next
// seq).
type salvage struct {
	regions int
	bytes   int64
	gapFrom uint64         // next seq when a region was skipped; 0 if none pending
	lost    []SegmentRange // seq ranges (First..Last) of lost messages
	nlost   uint64
}

// seen is called with each seq replay meets after the header's next seq
// or an add: it closes a pending gap.
func (g *salvage) seen(s *Store, seq uint64) {
	if g.gapFrom == 0 {
		return
	}
	if seq > g.gapFrom {
		g.lost = append(g.lost, SegmentRange{First: g.gapFrom, Last: seq - 1})
		g.nlost += seq - g.gapFrom
	}
	g.gapFrom = 0
}

// report logs what repair dropped, once replay is done.
func (g *salvage) report(s *Store) {
	if g.regions == 0 {
		return
	}
	var seqs []string
	for _, r := range g.lost {
		if r.First == r.Last {
			seqs = append(seqs, fmt.Sprint(r.First))
		} else {
			seqs = append(seqs, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
	}
	lost := fmt.Sprintf("%d messages", g.nlost)
	if len(seqs) > 0 {
		lost += " (seqs " + strings.Join(seqs, ", ") + ")"
	}
	if g.gapFrom != 0 {
		lost += fmt.Sprintf(" and whatever the damaged end of the log held from seq %d on", g.gapFrom)
	}
	s.stats.lostMessages.Add(g.nlost)
	s.logf("journal: repair: skipped %d damaged regions (%d bytes) and kept every valid frame after them; lost %s; "+
		"acknowledgements in the damaged frames are lost too, so messages they acknowledged may be delivered again",
		g.regions, g.bytes, lost)
}

// resync returns the offset of the frame that follows a bad frame at off:
// where its length word says, if a valid frame is there, else the first
// valid frame after it; -1 if none follows. A frame is at least 16 bytes,
// so the next one starts no sooner than off+16.
func resync(data []byte, off int64) int64 {
	if off+frameHeaderSize <= int64(len(data)) {
		if length := binary.LittleEndian.Uint32(data[off:]); length > 0 && length <= maxFrameLen {
			next := off + align(frameHeaderSize+int64(length))
			if st, _, _, _, _ := parseFrame(data, next); st == frameOK {
				return next
			} else if st == frameEnd && allZero(tail(data, next)) {
				return -1
			}
		}
	}
	return findValidFrame(data, off+2*frameAlign)
}

// skip (repair) makes the damaged bytes from off to resume a skip frame,
// so that the segment replays cleanly from now on, or, with resume < 0,
// clears everything from off on. It returns where the log then ends.
func (s *Store) skip(seg *segment, data []byte, off, resume int64, cerr *CorruptionError) (int64, error) {
	if s.salvage.gapFrom == 0 {
		s.salvage.gapFrom = s.nextSeq
	}
	s.salvage.regions++
	if resume < 0 {
		n := int64(lastNonZero(tail(data, off)))
		if err := zeroRange(seg, off, n); err != nil {
			return 0, err
		}
		clear(data[off : off+n])
		s.salvage.bytes += n
		s.stats.repairedByte.Add(uint64(n))
		s.logf("journal: repair: %v: no valid frame follows in the segment: cleared its last %d bytes", cerr, n)
		return off, nil
	}
	length := uint32(resume - off - frameHeaderSize)
	f := data[off:resume]
	binary.LittleEndian.PutUint32(f[0:4], length)
	f[frameHeaderSize] = recSkip
	binary.LittleEndian.PutUint32(f[4:8], frameCRC(f, length))
	if _, err := seg.f.WriteAt(f[:frameHeaderSize+1], off); err != nil {
		return 0, fmt.Errorf("journal: repair %s at %d: %w", seg.path, off, err)
	}
	if err := seg.f.Sync(); err != nil {
		return 0, fmt.Errorf("journal: repair: sync %s: %w", seg.path, err)
	}
	s.salvage.bytes += resume - off
	s.stats.repairedByte.Add(uint64(resume - off))
	s.logf("journal: repair: %v: skipped %d bytes to the valid frame at offset %d", cerr, resume-off, resume)
	return resume, nil
}

// restampHeader (repair) writes a new header over a damaged segment
// header and returns where replay goes on: the first valid frame after
// it (the bytes in between become a skip frame), or the header's end if
// none follows (the rest is cleared).
func (s *Store) restampHeader(seg *segment, data []byte, herr *CorruptionError) (int64, error) {
	if int64(len(data)) < segmentHeaderFrameSize {
		data = append(data, make([]byte, segmentHeaderFrameSize-int64(len(data)))...)
	}
	resume := int64(segmentHeaderFrameSize)
	if st, _, _, _, _ := parseFrame(data, resume); st != frameOK {
		resume = findValidFrame(data, resume+2*frameAlign)
	}
	hdr := appendSegmentHeader(nil, seg.id, s.nextSeq)
	if _, err := seg.f.WriteAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("journal: repair %s: write header: %w", seg.path, err)
	}
	copy(data, hdr)
	seg.firstSeq = s.nextSeq
	s.logf("journal: repair: %v: wrote a new segment header", herr)
	if resume == segmentHeaderFrameSize {
		if err := seg.f.Sync(); err != nil {
			return 0, fmt.Errorf("journal: repair: sync %s: %w", seg.path, err)
		}
		if s.salvage.gapFrom == 0 {
			s.salvage.gapFrom = s.nextSeq
		}
		s.salvage.regions++
		s.salvage.bytes += segmentHeaderFrameSize
		return resume, nil
	}
	return s.skip(seg, data, segmentHeaderFrameSize, resume, herr)
}
