package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// manifestName is the file that records which segments the journal holds
// and whether it was closed cleanly; see the package doc.
const manifestName = "MANIFEST"

// manifestLen is the manifest payload's size: magic, oldest, newest,
// flags, clean segment, clean end.
const manifestLen = 4 + 8 + 8 + 1 + 8 + 8

const (
	manifestMagic = 0x4d4a424c // "LBJM" little-endian
	manifestClean = 1          // flags bit: closed cleanly at (cleanSeg, cleanEnd)
)

// manifest is the decoded MANIFEST: every segment id from oldest to
// newest exists; after a clean Close the log ends in cleanSeg at cleanEnd.
type manifest struct {
	oldest, newest uint64
	clean          bool
	cleanSeg       uint64
	cleanEnd       int64
}

func (m manifest) encode() []byte {
	buf, start := beginFrame(nil, recManifest)
	buf = binary.LittleEndian.AppendUint32(buf, manifestMagic)
	buf = binary.LittleEndian.AppendUint64(buf, m.oldest)
	buf = binary.LittleEndian.AppendUint64(buf, m.newest)
	var flags byte
	if m.clean {
		flags |= manifestClean
	}
	buf = append(buf, flags)
	buf = binary.LittleEndian.AppendUint64(buf, m.cleanSeg)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.cleanEnd))
	return endFrame(buf, start)
}

func decodeManifest(data []byte) (manifest, error) {
	st, typ, p, _, reason := parseFrame(data, 0)
	switch {
	case st != frameOK && reason == "":
		return manifest{}, errors.New("empty")
	case st != frameOK:
		return manifest{}, errors.New(reason)
	case typ != recManifest || len(p) != manifestLen || binary.LittleEndian.Uint32(p) != manifestMagic:
		return manifest{}, errBadRecord
	}
	m := manifest{
		oldest:   binary.LittleEndian.Uint64(p[4:]),
		newest:   binary.LittleEndian.Uint64(p[12:]),
		clean:    p[20]&manifestClean != 0,
		cleanSeg: binary.LittleEndian.Uint64(p[21:]),
		cleanEnd: int64(binary.LittleEndian.Uint64(p[29:])),
	}
	if m.oldest > m.newest || m.cleanEnd < 0 {
		return manifest{}, errBadRecord
	}
	return m, nil
}

// readManifest reads the journal's manifest; found is false for a journal
// written before manifests existed.
func (s *Store) readManifest() (m manifest, found bool, err error) {
	path := filepath.Join(s.dir, manifestName)
	f, err := s.fs.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{}, false, nil
	}
	if err != nil {
		return manifest{}, false, fmt.Errorf("journal: open %s: %w", path, err)
	}
	defer f.Close()
	data, err := readAll(f, nil)
	if err != nil {
		return manifest{}, false, fmt.Errorf("journal: read %s: %w", path, err)
	}
	if m, err = decodeManifest(data); err != nil {
		return manifest{}, false, &CorruptionError{File: path, Reason: "bad manifest: " + err.Error()}
	}
	return m, true, nil
}

// writeManifest replaces the manifest atomically (a synced temporary
// file renamed over it, then the directory synced) with s.man as changed
// by update. It is serialised by manMu; s.man changes only if the new
// manifest is durable.
func (s *Store) writeManifest(update func(m *manifest)) error {
	s.manMu.Lock()
	defer s.manMu.Unlock()
	m := s.man
	update(&m)
	path := filepath.Join(s.dir, manifestName)
	tmp := path + ".tmp"
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, err = f.Write(m.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, path)
	}
	if err == nil {
		err = s.fs.SyncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	s.man = m
	return nil
}

// SegmentRange is a range of segment ids, both ends included.
type SegmentRange struct{ First, Last uint64 }

func (r SegmentRange) String() string {
	if r.First == r.Last {
		return segmentName(r.First)
	}
	return segmentName(r.First) + " to " + segmentName(r.Last)
}

// missingSegments returns the segment ids that should exist but do not:
// gaps between the ids found (sorted), and, with a manifest, ids of its
// range [oldest, newest] beyond those found.
func missingSegments(ids []uint64, m manifest, found bool) []SegmentRange {
	var miss []SegmentRange
	if found && (len(ids) == 0 || ids[0] > m.oldest) {
		last := m.newest
		if len(ids) > 0 {
			last = min(last, ids[0]-1)
		}
		miss = append(miss, SegmentRange{m.oldest, last})
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			miss = append(miss, SegmentRange{ids[i-1] + 1, ids[i] - 1})
		}
	}
	if found && len(ids) > 0 && ids[len(ids)-1] < m.newest {
		miss = append(miss, SegmentRange{max(ids[len(ids)-1]+1, m.oldest), m.newest})
	}
	return miss
}
