package journaled

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lossbench/lossbench/broker/store"
)

// metaQueue is the queue of every batch's first journal add. Part of the
// format.
const metaQueue = "\x00lossbench/journaled"

// metaVersion is the first byte of a meta record. Part of the format.
const metaVersion = 1

var errBadMeta = errors.New("journaled: bad meta record")

// meta is a decoded meta record.
type meta struct {
	adds []uint64 // the seqs of the batch's adds, in order
	acks []uint64
}

func encodeMeta(b *store.Batch) []byte {
	buf := make([]byte, 0, 1+binary.MaxVarintLen64*(2+len(b.Adds)+len(b.Acks)))
	buf = append(buf, metaVersion)
	buf = binary.AppendUvarint(buf, uint64(len(b.Adds)))
	for _, m := range b.Adds {
		buf = binary.AppendUvarint(buf, m.Seq)
	}
	buf = binary.AppendUvarint(buf, uint64(len(b.Acks)))
	for _, seq := range b.Acks {
		buf = binary.AppendUvarint(buf, seq)
	}
	return buf
}

func decodeMeta(p []byte) (meta, error) {
	var m meta
	if len(p) == 0 || p[0] != metaVersion {
		return m, fmt.Errorf("%w: version", errBadMeta)
	}
	p = p[1:]
	list := func() ([]uint64, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)) {
			return nil, fmt.Errorf("%w: count", errBadMeta)
		}
		p = p[k:]
		out := make([]uint64, n)
		for i := range out {
			v, k := binary.Uvarint(p)
			if k <= 0 {
				return nil, fmt.Errorf("%w: seq", errBadMeta)
			}
			out[i], p = v, p[k:]
		}
		return out, nil
	}
	var err error
	if m.adds, err = list(); err != nil {
		return m, err
	}
	if m.acks, err = list(); err != nil {
		return m, err
	}
	if len(p) != 0 {
		return m, fmt.Errorf("%w: %d trailing bytes", errBadMeta, len(p))
	}
	return m, nil
}
