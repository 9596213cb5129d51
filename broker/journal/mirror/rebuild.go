package mirror

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"slices"
	"time"

	"github.com/lossbench/lossbench/broker/vfs"
)

// rebuild copies the journal from a healthy copy into m, which Open
// emptied and marked stale, while the journal goes on writing: from the
// start every change is applied to m too, and the copy of each chunk of
// a file holds that file's lock, so that a write is never overwritten
// by older bytes. Once every file is copied, m is synced whole and
// marked healthy, with writers held for that last step only. A crash
// before that leaves m marked stale, to be rebuilt again.
func (s *Set) rebuild(m *mirror) error {
	src := s.readers()
	if len(src) == 0 {
		return errors.New("no healthy copy to rebuild from")
	}
	from := src[0]
	// From now on every change goes to m too; what exists now is listed
	// after that, so that no file is missed in between.
	s.gate.Lock()
	s.mu.Lock()
	m.state, m.why, m.copied, m.total, m.rebuildStarted = Rebuilding, "", 0, 0, time.Now()
	s.mu.Unlock()
	s.gate.Unlock()
	names, err := from.fs.List(from.dir)
	if err != nil {
		s.drop(from, fmt.Errorf("list: %w", err))
		s.setStale(m, "rebuild interrupted: its source failed")
		return fmt.Errorf("list %s: %w", from.dir, err)
	}
	var total int64
	for _, n := range names {
		if fi, err := from.fs.Stat(from.path(n)); err == nil && !skipName(n) {
			total += fi.Size()
		}
	}
	s.mu.Lock()
	m.total = total
	s.mu.Unlock()
	s.logf("journal mirror: rebuilding %s from %s (%d bytes) while serving", m.dir, from.dir, total)
	start := time.Now()
	buf := make([]byte, s.opts.RebuildChunk)
	for _, n := range names {
		if skipName(n) {
			continue
		}
		if err := s.copyFile(from, m, n, buf); err != nil {
			return err
		}
	}
	// The bulk of what was copied is flushed while writers go on, so that
	// the last step, which holds them, has little left to sync.
	if err := syncAll(m.fs, m.dir); err != nil {
		s.drop(m, err)
		return err
	}
	// Last step: writers wait while m is synced whole and marked healthy.
	s.gate.Lock()
	defer s.gate.Unlock()
	if !s.isRebuilding(m) {
		return fmt.Errorf("%s dropped during its rebuild", m.dir)
	}
	if err := syncAll(m.fs, m.dir); err != nil {
		s.drop(m, err)
		return err
	}
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	if err := writeRecord(m.fs, m.dir, record{state: recHealthy, set: s.setID, gen: gen}); err != nil {
		s.drop(m, err)
		return err
	}
	s.mu.Lock()
	m.state, m.err = Healthy, nil
	copied := m.copied
	s.mu.Unlock()
	h, t := s.Count()
	s.logf("journal mirror: %s rebuilt from %s (%d bytes in %v) and healthy; %d of %d copies healthy", m.dir, from.dir, copied, time.Since(start).Round(time.Millisecond), h, t)
	return nil
}

// copyFile copies file name from one copy to m, a chunk at a time under
// the file's lock.
func (s *Set) copyFile(from, m *mirror, name string, buf []byte) error {
	pl := s.pathLock(name)
	pl.Lock()
	sf, err := from.fs.Open(from.path(name))
	if errors.Is(err, iofs.ErrNotExist) {
		pl.Unlock()
		return nil // removed since the listing
	}
	if err != nil {
		pl.Unlock()
		s.drop(from, fmt.Errorf("rebuild: open %s: %w", name, err))
		s.setStale(m, "rebuild interrupted: its source failed")
		return err
	}
	defer sf.Close()
	df, err := m.fs.OpenFile(m.path(name), os.O_RDWR|os.O_CREATE, 0o644)
	pl.Unlock()
	if err != nil {
		s.drop(m, fmt.Errorf("rebuild: create %s: %w", name, err))
		return err
	}
	defer df.Close()
	for off := int64(0); ; {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		pl.Lock()
		if !s.isRebuilding(m) {
			pl.Unlock()
			return fmt.Errorf("%s dropped during its rebuild", m.dir)
		}
		n, rerr := sf.ReadAt(buf, off)
		var werr error
		if n > 0 {
			_, werr = df.WriteAt(buf[:n], off)
		}
		pl.Unlock()
		if werr != nil {
			s.drop(m, fmt.Errorf("rebuild: write %s: %w", name, werr))
			return werr
		}
		if rerr != nil && rerr != io.EOF {
			s.drop(from, fmt.Errorf("rebuild: read %s: %w", name, rerr))
			s.setStale(m, "rebuild interrupted: its source failed")
			return rerr
		}
		off += int64(n)
		s.mu.Lock()
		m.copied += int64(n)
		s.mu.Unlock()
		if rerr == io.EOF || n == 0 {
			return nil
		}
	}
}

// syncAll makes every file in dir and its entries durable.
func syncAll(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == "LOCK" {
			continue
		}
		f, err := fs.OpenFile(dir+string(os.PathSeparator)+n, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return fs.SyncDir(dir)
}

// syncCopy makes dst's journal files identical to src's (Open, before
// the journal runs): it copies the files that differ, removes those src
// lacks, and returns how many it copied. Files are compared and copied a
// chunk at a time, so that a segment (up to journal.MaxSegmentSize) is
// never held in memory whole.
func syncCopy(src, dst *mirror, chunk int) (int, error) {
	names, err := src.fs.List(src.dir)
	if err != nil {
		return 0, err
	}
	a, b := make([]byte, chunk), make([]byte, chunk)
	want := map[string]bool{}
	copied := 0
	for _, n := range names {
		if skipName(n) {
			continue
		}
		want[n] = true
		sf, err := src.fs.Open(src.path(n))
		if err != nil {
			return copied, fmt.Errorf("read %s: %w", src.path(n), err)
		}
		same, err := sameFile(sf, dst, n, a, b)
		if err == nil && !same {
			err = copyWhole(sf, dst, n, a)
		}
		sf.Close()
		if err != nil {
			return copied, err
		}
		if !same {
			copied++
		}
	}
	have, err := dst.fs.List(dst.dir)
	if err != nil {
		return copied, err
	}
	for _, n := range have {
		if !skipName(n) && !want[n] {
			if err := dst.fs.Remove(dst.path(n)); err != nil {
				return copied, err
			}
		}
	}
	return copied, dst.fs.SyncDir(dst.dir)
}

// sameCopies reports whether every candidate holds the first one's
// journal files byte for byte, read a chunk at a time; false too when a
// file cannot be read (the caller then verifies each copy).
func sameCopies(cands []*candidate, chunk int) bool {
	src := cands[0].m
	names, err := journalNames(src)
	if err != nil {
		return false
	}
	a, b := make([]byte, chunk), make([]byte, chunk)
	for _, c := range cands[1:] {
		other, err := journalNames(c.m)
		if err != nil || !slices.Equal(names, other) {
			return false
		}
		for _, n := range names {
			sf, err := src.fs.Open(src.path(n))
			if err != nil {
				return false
			}
			same, err := sameFile(sf, c.m, n, a, b)
			sf.Close()
			if err != nil || !same {
				return false
			}
		}
	}
	return true
}

// journalNames lists m's journal files (not its lock or state record),
// sorted.
func journalNames(m *mirror) ([]string, error) {
	names, err := m.fs.List(m.dir)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, skipName), nil
}

// sameFile says whether dst's file name holds what sf holds; a dst file
// that cannot be read differs. An error is one reading sf.
func sameFile(sf vfs.File, dst *mirror, name string, a, b []byte) (bool, error) {
	fi, err := sf.Stat()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", sf.Name(), err)
	}
	df, err := dst.fs.Open(dst.path(name))
	if err != nil {
		return false, nil
	}
	defer df.Close()
	if dfi, err := df.Stat(); err != nil || dfi.Size() != fi.Size() {
		return false, nil
	}
	for off := int64(0); off < fi.Size(); {
		n, err := sf.ReadAt(a, off)
		if n < len(a) && off+int64(n) < fi.Size() {
			return false, fmt.Errorf("read %s: %w", sf.Name(), cmp.Or(err, io.ErrUnexpectedEOF))
		}
		if m, _ := df.ReadAt(b[:n], off); m < n || !bytes.Equal(a[:n], b[:n]) {
			return false, nil
		}
		off += int64(n)
	}
	return true, nil
}

// copyWhole replaces dst's file name with sf's bytes, durably.
func copyWhole(sf vfs.File, dst *mirror, name string, buf []byte) error {
	df, err := dst.fs.Create(dst.path(name))
	if err != nil {
		return err
	}
	defer df.Close()
	for off := int64(0); ; {
		n, rerr := sf.ReadAt(buf, off)
		if n > 0 {
			if _, err := df.WriteAt(buf[:n], off); err != nil {
				return err
			}
			off += int64(n)
		}
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("read %s: %w", sf.Name(), rerr)
		}
		if rerr == io.EOF || n == 0 {
			break
		}
	}
	return df.Sync()
}
