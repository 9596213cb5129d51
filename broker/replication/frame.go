package replication

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Frame types (part of the protocol; see the package doc).
const (
	typeHello    byte = 1  // master → replica: epoch, master id, lsn
	typeWelcome  byte = 2  // replica → master: accepted, epoch known, id
	typeSnapshot byte = 3  // master → replica: lsn, next seq, final, one batch of adds
	typeGroup    byte = 4  // master → replica: first lsn, batches
	typeAck      byte = 5  // replica → master: lsn held as promised
	typePing     byte = 6  // master → replica: lsn sent so far (heart-beat)
	typeProbe    byte = 7  // node → node: who are you (election without witness)
	typeStatus   byte = 8  // answer to a probe
	typeAcquire  byte = 10 // node → witness: grant me the epoch after epoch
	typeRenew    byte = 11 // master → witness: keep my grant, in-sync replicas
	typeRelease  byte = 12 // master → witness: my grant is over
	typeGrant    byte = 13 // witness → node: the answer to the three above
	typeResume   byte = 14 // master → replica: resuming from its position, or not
	// typePosition frames a replica's position in its
	// replication.position file; never sent.
	typePosition byte = 9
)

// frameHeaderSize is the length and crc words.
const frameHeaderSize = 8

// MaxFrame bounds a frame's length word (type byte and payload), so that a
// corrupt or hostile length cannot make a reader allocate without bound.
const MaxFrame = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of the frame reader.
var (
	// ErrCorrupt is wrapped by every frame that fails its checks.
	ErrCorrupt = errors.New("replication: corrupt frame")
	// ErrProtocol is wrapped by a well-formed frame that makes no sense
	// where it came (a type out of place, a position that cannot be).
	ErrProtocol = errors.New("replication: protocol violation")
)

// appendFrame appends a frame of type typ with payload p.
func appendFrame(buf []byte, typ byte, p []byte) []byte {
	n := uint32(1 + len(p))
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, n)
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = append(buf, typ)
	buf = append(buf, p...)
	crc := crc32.Update(0, castagnoli, buf[start:start+4])
	crc = crc32.Update(crc, castagnoli, buf[start+8:])
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf
}

// frameReader reads frames from a connection.
type frameReader struct {
	r   *bufio.Reader
	off int64 // bytes consumed so far, for errors
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next reads one frame. The payload is valid until the next call. A
// clean end of stream before a frame is io.EOF; a stream ending inside a
// frame is io.ErrUnexpectedEOF; a bad length or checksum wraps ErrCorrupt.
func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n == 0 || n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: length %d at offset %d", ErrCorrupt, n, fr.off)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	body := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	crc := crc32.Update(0, castagnoli, hdr[:4])
	crc = crc32.Update(crc, castagnoli, body)
	if want := binary.LittleEndian.Uint32(hdr[4:]); crc != want {
		return 0, nil, fmt.Errorf("%w: crc %08x, want %08x, at offset %d", ErrCorrupt, crc, want, fr.off)
	}
	fr.off += frameHeaderSize + int64(n)
	if cap(fr.buf) > 4<<20 {
		fr.buf = nil // do not keep a large snapshot chunk's buffer
		body = append([]byte(nil), body...)
	}
	return body[0], body[1:], nil
}
