package mirror

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	iofs "io/fs"
	"path/filepath"

	"github.com/lossbench/lossbench/broker/vfs"
)

// stateName is the per-directory state record; see the package doc.
const stateName = "MIRROR"

// State record format (part of the on-disk format).
const (
	stateMagic   = 0x524d424c // "LBMR" little-endian
	stateVersion = 1
	stateLen     = 4 + 1 + 1 + 16 + 8 + 4
)

// recState is a copy's state as its record says.
type recState byte

const (
	recHealthy recState = 1 // a full copy as of its generation
	recStale   recState = 2 // dropped, or being rebuilt: never read from
)

// record is a decoded state record.
type record struct {
	state recState
	set   [16]byte
	gen   uint64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r record) encode() []byte {
	b := binary.LittleEndian.AppendUint32(nil, stateMagic)
	b = append(b, stateVersion, byte(r.state))
	b = append(b, r.set[:]...)
	b = binary.LittleEndian.AppendUint64(b, r.gen)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadState = errors.New("mirror: bad state record")

func decodeRecord(b []byte) (record, error) {
	if len(b) != stateLen || binary.LittleEndian.Uint32(b) != stateMagic || b[4] != stateVersion {
		return record{}, errBadState
	}
	if crc32.Checksum(b[:stateLen-4], castagnoli) != binary.LittleEndian.Uint32(b[stateLen-4:]) {
		return record{}, fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	r := record{state: recState(b[5]), gen: binary.LittleEndian.Uint64(b[22:])}
	copy(r.set[:], b[6:22])
	if r.state != recHealthy && r.state != recStale {
		return record{}, fmt.Errorf("%w: state %d", errBadState, b[5])
	}
	return r, nil
}

// readRecord reads dir's state record; found is false when it has none.
func readRecord(fs vfs.FS, dir string) (r record, found bool, err error) {
	f, err := fs.Open(filepath.Join(dir, stateName))
	if errors.Is(err, iofs.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	defer f.Close()
	buf := make([]byte, stateLen+1)
	n, _ := f.ReadAt(buf, 0)
	r, err = decodeRecord(buf[:n])
	return r, true, err
}

// writeRecord replaces dir's state record atomically and durably.
func writeRecord(fs vfs.FS, dir string, r record) error {
	path := filepath.Join(dir, stateName)
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("write state record: %w", err)
	}
	_, err = f.WriteAt(r.encode(), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write state record %s: %w", path, err)
	}
	return nil
}

// CheckAlone refuses to open dir as a journal on its own (one --data)
// when its state record says it is a stale copy of a mirrored journal:
// it misses writes that only the other copies hold. A copy marked
// healthy is a whole journal as of its generation and may be opened.
func CheckAlone(fs vfs.FS, dir string) error {
	if fs == nil {
		fs = vfs.Default
	}
	r, found, err := readRecord(fs, dir)
	switch {
	case !found:
		return nil
	case err != nil:
		return fmt.Errorf("mirror: %s: %w: start with every --data of the mirrored journal", dir, err)
	case r.state == recStale:
		return fmt.Errorf("mirror: %s is a stale copy of a mirrored journal (dropped, or rebuilt only in part): start with every --data of the set so that it is rebuilt, or empty it", dir)
	}
	return nil
}
