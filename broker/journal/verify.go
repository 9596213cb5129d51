package journal

import (
	"fmt"

	"github.com/lossbench/lossbench/broker/vfs"
)

// Position is where a journal's log ends, as Verify found it.
type Position struct {
	// Segment and End are the last segment holding a record and where
	// its valid frames end; Segments is how many segment files replay
	// kept.
	Segment  uint64
	End      int64
	Segments int
	// NextSeq is the sequence number the journal would hand out next.
	NextSeq uint64
	// Live is the number of messages added and not acknowledged.
	Live int
	// Clean is set when the journal was closed cleanly.
	Clean bool
	// TornBytes are bytes after the last valid frame that Open would
	// clear as a torn tail.
	TornBytes int64
}

// Less orders positions by how far the log goes: a log that ends later
// holds everything a shorter copy of it holds.
func (p Position) Less(q Position) bool {
	if p.Segment != q.Segment {
		return p.Segment < q.Segment
	}
	return p.End < q.End
}

func (p Position) String() string {
	return fmt.Sprintf("log ends in %s at offset %d, next seq %d, %d live messages", segmentName(p.Segment), p.End, p.NextSeq, p.Live)
}

// Verify replays the journal in dir without changing it, as Open would
// without Options.Repair, and returns where its log ends: a
// *CorruptionError or *MissingSegmentsError if Open would refuse it. It
// takes no lock; the caller keeps other writers away. The mirrored
// journal (package mirror) verifies each copy before it chooses one.
func Verify(dir string, opts Options) (Position, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	opts.Repair = false
	s := &Store{
		dir:      dir,
		fs:       opts.FS,
		opts:     opts,
		segSize:  opts.SegmentSize,
		logf:     func(string, ...any) {},
		index:    make(map[uint64]entry),
		segByID:  make(map[uint64]*segment),
		nextSeq:  1,
		readOnly: true,
	}
	err := s.replay()
	for _, seg := range s.segs {
		seg.f.Close()
	}
	if err != nil {
		return Position{}, err
	}
	p := Position{NextSeq: s.nextSeq, Live: len(s.index), Clean: s.clean != nil, Segments: len(s.segs), TornBytes: int64(s.stats.tornBytes.Load())}
	if n := len(s.segs); n > 0 {
		p.Segment, p.End = s.segs[n-1].id, s.segs[n-1].end
	}
	return p, nil
}
