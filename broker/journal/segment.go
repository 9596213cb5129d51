package journal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lossbench/lossbench/broker/vfs"
)

// segment is one open segment file.
type segment struct {
	id   uint64
	path string
	f    vfs.File
	// guarded by Store.mu:
	live      int   // messages whose body is here and not acknowledged
	liveBytes int64 // their add records' bytes
	recBytes  int64 // bytes of every add record written here, live or not
	end       int64 // end of the written frames
	size      int64 // of the file
	moves     bool  // holds move records (compaction)
	// Set by replay (and for placeholders): the header's next seq, and
	// the next seq once the segment's records were applied.
	firstSeq, endSeq uint64
	// ep is the segment's epoch record (zero in a journal that is not
	// fenced, or written before epochs); set by replay and when written.
	ep segEpoch
}

const segmentSuffix = ".log"

func segmentName(id uint64) string { return fmt.Sprintf("%016x%s", id, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

var zeros = make([]byte, 1<<20)

// preallocate creates segment id at full size, filled with zeros, and makes
// it and its directory entry durable: later fdatasyncs then flush only data.
func preallocate(fs vfs.FS, dir string, id uint64, size int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(id))
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*segment, error) {
		f.Close()
		_ = fs.Remove(path)
		return nil, err
	}
	for off := int64(0); off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fail(err)
		}
		off += n
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fail(err)
	}
	return &segment{id: id, path: path, f: f, size: size}, nil
}

// prepare preallocates segment id and records in the manifest that it
// exists, so that losing it later is noticed.
func (s *Store) prepare(id uint64) (*segment, error) {
	seg, err := preallocate(s.fs, s.dir, id, s.segSize)
	if err != nil {
		return nil, err
	}
	s.preallocBytes.Store(seg.size)
	if err := s.writeManifest(func(m *manifest) { m.newest = max(m.newest, id) }); err != nil {
		seg.f.Close()
		return nil, err
	}
	return seg, nil
}

type preallocResult struct {
	seg *segment
	err error
}

// startPrealloc prepares segment id in the background, so that rolling
// over costs a header write rather than writing and syncing SegmentSize
// bytes of zeros while producers wait.
func (s *Store) startPrealloc(id uint64) {
	ch := make(chan preallocResult, 1)
	s.next = ch
	run := func() {
		seg, err := s.prepare(id)
		if err != nil {
			// Said now (at start, for the first), not first at the roll
			// that needs the segment.
			s.logf("journal: preallocate segment %s: %v (tried again at the roll)", segmentName(id), err)
		}
		ch <- preallocResult{seg, err}
	}
	if s.opts.syncPrealloc {
		run()
		return
	}
	go run()
}

// readAll reads f whole into buf, which it grows as needed.
func readAll(f vfs.File, buf []byte) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	n, err := f.ReadAt(buf, 0)
	if n == len(buf) {
		err = nil
	} else if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return buf[:n], err
}
