package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/lossbench/lossbench/broker/store"
)

// The constants below are part of the on-disk format; see the package doc.
const (
	frameAlign      = 8          // every frame starts at a multiple of this
	frameHeaderSize = 8          // length word + crc word
	maxFrameLen     = 1<<31 - 1  // largest length word accepted
	segmentMagic    = 0x314a424c // "LBJ1" little-endian

	recSegmentHeader = 1
	recBatch         = 2
	recManifest      = 3 // the MANIFEST file's only frame
	recSkip          = 4 // damaged bytes repair skipped; the payload means nothing
	recEpoch         = 5 // follows the segment header in a fenced journal
	recMove          = 6 // live messages compaction moved here, with their seqs

	epochLen = 8 + 8 + 8 // epoch, previous segment id, its end

	segmentHeaderLen = 4 + 8 + 8 // magic, segment id, next seq

	// maxSeq bounds sequence numbers, so that seq+1 never wraps.
	maxSeq = 1<<63 - 1
	// segmentHeaderFrameSize is where the first batch of a segment starts.
	segmentHeaderFrameSize = (frameHeaderSize + 1 + segmentHeaderLen + frameAlign - 1) &^ (frameAlign - 1)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func align(n int64) int64 { return (n + frameAlign - 1) &^ (frameAlign - 1) }

// frameCRC is the checksum of a frame whose header starts at f[0].
func frameCRC(f []byte, length uint32) uint32 {
	crc := crc32.Update(0, castagnoli, f[0:4])
	return crc32.Update(crc, castagnoli, f[frameHeaderSize:frameHeaderSize+int(length)])
}

// beginFrame appends the header space and type byte of a new frame.
func beginFrame(buf []byte, typ byte) ([]byte, int) {
	start := len(buf)
	return append(buf, 0, 0, 0, 0, 0, 0, 0, 0, typ), start
}

// endFrame fills in the length and crc of the frame at start and pads it.
func endFrame(buf []byte, start int) []byte {
	length := uint32(len(buf) - start - frameHeaderSize)
	f := buf[start:]
	binary.LittleEndian.PutUint32(f[0:4], length)
	binary.LittleEndian.PutUint32(f[4:8], frameCRC(f, length))
	for len(buf)%frameAlign != 0 {
		buf = append(buf, 0)
	}
	return buf
}

func appendSegmentHeader(buf []byte, id, nextSeq uint64) []byte {
	buf, start := beginFrame(buf, recSegmentHeader)
	buf = binary.LittleEndian.AppendUint32(buf, segmentMagic)
	buf = binary.LittleEndian.AppendUint64(buf, id)
	buf = binary.LittleEndian.AppendUint64(buf, nextSeq)
	return endFrame(buf, start)
}

// segEpoch is a fenced segment's epoch record: the writer's lease epoch,
// and where the previous segment's log ended when this one was started.
type segEpoch struct {
	epoch   int64
	prevID  uint64
	prevEnd int64
}

func appendEpoch(buf []byte, e segEpoch) []byte {
	buf, start := beginFrame(buf, recEpoch)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.epoch))
	buf = binary.LittleEndian.AppendUint64(buf, e.prevID)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(e.prevEnd))
	return endFrame(buf, start)
}

func decodeEpoch(p []byte) (segEpoch, error) {
	if len(p) != epochLen {
		return segEpoch{}, errBadRecord
	}
	e := segEpoch{
		epoch:   int64(binary.LittleEndian.Uint64(p)),
		prevID:  binary.LittleEndian.Uint64(p[8:]),
		prevEnd: int64(binary.LittleEndian.Uint64(p[16:])),
	}
	if e.epoch <= 0 || e.prevEnd < 0 {
		return segEpoch{}, errBadRecord
	}
	return e, nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func strLen(n int) int { return uvarintLen(uint64(n)) + n }

// batchFrameSize is the aligned size of b's frame.
func batchFrameSize(b *store.Batch) int64 {
	n := frameHeaderSize + 1 + uvarintLen(uint64(len(b.Acks)))
	for _, seq := range b.Acks {
		n += uvarintLen(seq)
	}
	n += uvarintLen(uint64(len(b.Adds)))
	for _, m := range b.Adds {
		n += addSize(m)
	}
	return align(int64(n))
}

// addSize is the size of m's add record.
func addSize(m *store.Message) int {
	n := 8 + strLen(len(m.Queue)) + uvarintLen(uint64(len(m.Headers)))
	for _, h := range m.Headers {
		n += strLen(len(h.Key)) + strLen(len(h.Value))
	}
	return n + strLen(len(m.Body))
}

// appendBatch appends b's frame, with seqs firstSeq, firstSeq+1, ... for
// its adds, and appends to bodyOffs each body's offset from the frame start.
func appendBatch(buf []byte, b *store.Batch, firstSeq uint64, bodyOffs []int64) ([]byte, []int64) {
	return appendRecord(buf, recBatch, b, firstSeq, bodyOffs)
}

// appendRecord is appendBatch for a record of type typ; a move record
// (recMove), and a batch with firstSeq 0 (Store.Apply), keeps each add's
// Seq.
func appendRecord(buf []byte, typ byte, b *store.Batch, firstSeq uint64, bodyOffs []int64) ([]byte, []int64) {
	buf, start := beginFrame(buf, typ)
	buf = binary.AppendUvarint(buf, uint64(len(b.Acks)))
	for _, seq := range b.Acks {
		buf = binary.AppendUvarint(buf, seq)
	}
	buf = binary.AppendUvarint(buf, uint64(len(b.Adds)))
	for i, m := range b.Adds {
		seq := firstSeq + uint64(i)
		if typ == recMove || firstSeq == 0 {
			seq = m.Seq
		}
		buf = binary.LittleEndian.AppendUint64(buf, seq)
		buf = appendString(buf, m.Queue)
		buf = binary.AppendUvarint(buf, uint64(len(m.Headers)))
		for _, h := range m.Headers {
			buf = appendString(buf, h.Key)
			buf = appendString(buf, h.Value)
		}
		buf = binary.AppendUvarint(buf, uint64(len(m.Body)))
		bodyOffs = append(bodyOffs, int64(len(buf)-start))
		buf = append(buf, m.Body...)
	}
	return endFrame(buf, start), bodyOffs
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// frameStatus is what parseFrame found.
type frameStatus int

const (
	frameOK  frameStatus = iota
	frameEnd             // zero length word or end of data: the end of the log
	frameBad             // anything else; reason says what
)

// parseFrame reads the frame at data[off:]. On frameOK it returns the type,
// the payload (aliasing data) and the offset of the next frame.
func parseFrame(data []byte, off int64) (st frameStatus, typ byte, payload []byte, next int64, reason string) {
	if off >= int64(len(data)) {
		return frameEnd, 0, nil, off, ""
	}
	rest := data[off:]
	if len(rest) == 0 {
		return frameEnd, 0, nil, off, ""
	}
	if len(rest) < frameHeaderSize {
		if allZero(rest) {
			return frameEnd, 0, nil, off, ""
		}
		return frameBad, 0, nil, 0, "short frame header"
	}
	length := binary.LittleEndian.Uint32(rest[0:4])
	if length == 0 {
		if binary.LittleEndian.Uint32(rest[4:8]) == 0 {
			return frameEnd, 0, nil, off, ""
		}
		return frameBad, 0, nil, 0, "zero length with a checksum"
	}
	if length > maxFrameLen || int64(length) > int64(len(rest)-frameHeaderSize) {
		return frameBad, 0, nil, 0, "frame runs past end of file"
	}
	if binary.LittleEndian.Uint32(rest[4:8]) != frameCRC(rest, length) {
		return frameBad, 0, nil, 0, "checksum mismatch"
	}
	body := rest[frameHeaderSize : frameHeaderSize+int(length)]
	// next may lie past the end of data when a file ends in the padding;
	// the next frame still goes at the aligned offset.
	next = off + align(int64(frameHeaderSize)+int64(length))
	return frameOK, body[0], body[1:], next, ""
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// lastNonZero returns the index after the last non-zero byte of b.
func lastNonZero(b []byte) int {
	i := len(b)
	for i >= 8 && binary.LittleEndian.Uint64(b[i-8:i]) == 0 {
		i -= 8
	}
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return i
}

type segmentHeader struct {
	id, nextSeq uint64
}

var errBadRecord = errors.New("malformed record")

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	if len(p) != segmentHeaderLen || binary.LittleEndian.Uint32(p) != segmentMagic {
		return segmentHeader{}, errBadRecord
	}
	return segmentHeader{
		id:      binary.LittleEndian.Uint64(p[4:]),
		nextSeq: binary.LittleEndian.Uint64(p[12:]),
	}, nil
}

// addRec is one decoded add; its fields alias the payload.
type addRec struct {
	seq     uint64
	queue   []byte
	headers []byte // the raw headers: count, then key/value pairs
	nhdr    int
	bodyOff int // offset of the body in the payload
	body    []byte
}

// decoder reads a batch payload. All reads are bounds-checked.
type decoder struct {
	p   []byte
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p[d.off:])
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.p)-d.off < 8 {
		d.err = errBadRecord
		return 0
	}
	v := binary.LittleEndian.Uint64(d.p[d.off:])
	d.off += 8
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)-d.off) {
		d.err = errBadRecord
		return nil
	}
	b := d.p[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// decodeBatch parses a batch payload, calling ack for each acknowledged seq
// and add for each added message, in order. It checks the whole payload
// before calling either, so a malformed batch has no effect.
func decodeBatch(p []byte, ack func(seq uint64), add func(a *addRec) error) error {
	for pass := 0; pass < 2; pass++ {
		d := decoder{p: p}
		nacks := d.uvarint()
		if nacks > uint64(len(p)) {
			return errBadRecord
		}
		for i := uint64(0); i < nacks && d.err == nil; i++ {
			seq := d.uvarint()
			if pass == 1 && ack != nil {
				ack(seq)
			}
		}
		nadds := d.uvarint()
		if nadds > uint64(len(p)) {
			return errBadRecord
		}
		var a addRec
		for i := uint64(0); i < nadds && d.err == nil; i++ {
			a.seq = d.u64()
			a.queue = d.bytes()
			hstart := d.off
			nh := d.uvarint()
			if nh > uint64(len(p)) {
				return errBadRecord
			}
			for j := uint64(0); j < nh && d.err == nil; j++ {
				d.bytes()
				d.bytes()
			}
			a.headers, a.nhdr = p[hstart:d.off], int(nh)
			a.body = d.bytes()
			a.bodyOff = d.off - len(a.body)
			if pass == 1 && add != nil && d.err == nil {
				if err := add(&a); err != nil {
					return err
				}
			}
		}
		if d.err != nil {
			return d.err
		}
		if d.off != len(p) {
			return errBadRecord
		}
	}
	return nil
}

// entry is a's index entry, for a record whose payload starts at
// payloadOff in segment seg.
func (a *addRec) entry(seg uint64, payloadOff int64) entry {
	rec := 8 + strLen(len(a.queue)) + len(a.headers) + strLen(len(a.body))
	return entry{seg: seg, off: payloadOff + int64(a.bodyOff), size: int32(len(a.body)), rec: int32(rec)}
}

// message materialises a; the strings and body are copies.
func (a *addRec) message(withBody bool) *store.Message {
	m := &store.Message{Seq: a.seq, Queue: string(a.queue), Size: len(a.body)}
	d := decoder{p: a.headers}
	d.uvarint()
	if a.nhdr > 0 {
		m.Headers = make([]store.Header, a.nhdr)
		for i := range m.Headers {
			m.Headers[i].Key = string(d.bytes())
			m.Headers[i].Value = string(d.bytes())
		}
	}
	if withBody {
		m.Body = append([]byte{}, a.body...)
	}
	return m
}
