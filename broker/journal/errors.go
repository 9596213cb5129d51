package journal

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lossbench/lossbench/broker/vfs"
)

// ErrLocked is wrapped by Open's error when another process holds the
// journal's directory lock.
var ErrLocked = vfs.ErrLocked

// ErrCorrupt is wrapped by every *CorruptionError and *MissingSegmentsError.
var ErrCorrupt = errors.New("journal: corrupt")

// ErrStaleEpoch is wrapped by Open's error when the journal holds a
// segment of a newer epoch than Options.Epoch: another broker took over
// since this one acquired its lease.
var ErrStaleEpoch = errors.New("journal: fenced: a newer epoch has written to this journal")

// SplitBrain is evidence that two brokers wrote to one journal: frames of
// an older epoch found after a newer epoch took over. Open does not replay
// them; the bytes stay on disk.
type SplitBrain struct {
	File     string // the segment holding the frames
	From, To int64  // their offsets: [From, To)
	Frames   int    // valid frames among them
	Epoch    int64  // the epoch of the segment they are in
	Newer    int64  // the epoch that had taken over
}

func (e SplitBrain) String() string {
	return fmt.Sprintf("%s: %d frames (offsets %d to %d) of epoch %d written after epoch %d took over", e.File, e.Frames, e.From, e.To, e.Epoch, e.Newer)
}

// CorruptionError says where the log is corrupt: damage that is not a torn
// tail left by a crash.
type CorruptionError struct {
	// File is the segment's path.
	File string
	// Offset is where the first bad frame starts.
	Offset int64
	// Reason says what is wrong, e.g. "checksum mismatch".
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("journal: corrupt segment %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// MissingSegmentsError says which segment files of the journal are
// missing: a gap in the segment ids, or ids the manifest names that no
// file holds. Reclamation removes segments only from the oldest and
// records it in the manifest first, so a missing segment is never
// legitimate: its messages are lost.
type MissingSegmentsError struct {
	// Dir is the journal's directory.
	Dir string
	// Missing lists the missing segment ids.
	Missing []SegmentRange
	// Why is set when repair cannot proceed.
	Why string
}

func (e *MissingSegmentsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "journal: segment files missing from %s: ", e.Dir)
	for i, r := range e.Missing {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.String())
	}
	if e.Why != "" {
		b.WriteString("; " + e.Why)
	} else {
		b.WriteString(" (their messages are lost; start with repair to go on without them)")
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *MissingSegmentsError) Unwrap() error { return ErrCorrupt }
