package journal

import (
	"errors"
	"fmt"

	"github.com/lossbench/lossbench/broker/vfs"
)

// ErrLocked is wrapped by Open's error when another process holds the
// journal's directory lock.
var ErrLocked = vfs.ErrLocked

// ErrCorrupt is wrapped by every *CorruptionError.
var ErrCorrupt = errors.New("journal: corrupt")

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
