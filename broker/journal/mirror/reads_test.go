package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/vfs"
)

// countFS counts the bytes read from the journal files (not the state
// record) in dirA and dirB.
type countFS struct {
	vfs.FS
	mu   sync.Mutex
	read map[string]int64
}

type countFile struct {
	vfs.File
	c    *countFS
	name string
}

func (c *countFS) add(name string, n int) {
	if skipName(filepath.Base(name)) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range []string{dirA, dirB} {
		if strings.HasPrefix(name, d+"/") {
			c.read[d] += int64(n)
		}
	}
}

func (c *countFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countFile{File: f, c: c, name: name}, nil
}

func (c *countFS) Open(name string) (vfs.File, error) { return c.OpenFile(name, os.O_RDONLY, 0) }

func (f *countFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.c.add(f.name, n)
	return n, err
}

func (f *countFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.c.add(f.name, n)
	return n, err
}

// TestOpenReadsEachCopyOnce: opening two identical copies (after a clean
// close) reads the second copy's journal once (the comparison) and the
// first once plus the journal's own replay of it: no Verify of each copy
// and no second comparison. It read 3.1 and 2.0 times their size before.
func TestOpenReadsEachCopyOnce(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, mem, mem, Options{}, nil)
	send(t, s, 0, 2000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	size := map[string]int64{}
	for _, d := range []string{dirA, dirB} {
		names, err := journalNames(&mirror{dir: d, fs: mem})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			fi, err := mem.Stat(d + "/" + n)
			if err != nil {
				t.Fatal(err)
			}
			size[d] += fi.Size()
		}
	}
	c := &countFS{FS: mem, read: map[string]int64{}}
	log := &logBuf{}
	s = mustOpen(t, c, c, Options{}, log)
	c.mu.Lock()
	a, b := c.read[dirA], c.read[dirB]
	c.mu.Unlock()
	wantAll(t, numbers(t, s), 0, 2000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !log.contains("the 2 copies are identical") {
		t.Errorf("log:\n%s", log)
	}
	// What the journal reads opening one directory, the first copy.
	one := &countFS{FS: mem, read: map[string]int64{}}
	j, err := journal.Open(dirA, journal.Options{FS: one, SegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	replay := one.read[dirA]
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// a and b are what Open read (Recover reads bodies back after it).
	if b != size[dirB] || a != size[dirA]+replay {
		t.Fatalf("Open read %d bytes of %s, want %d (its %d once and the journal's replay of %d), and %d of %s, want its %d once",
			a, dirA, size[dirA]+replay, size[dirA], replay, b, dirB, size[dirB])
	}
}
