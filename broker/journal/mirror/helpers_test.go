package mirror

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

var bg = context.Background()

const (
	dirA = "/a/journal"
	dirB = "/b/journal"
)

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logBuf) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// open opens a mirrored journal on dirA (on fsA) and dirB (on fsB).
func open(t testing.TB, fsA, fsB vfs.FS, opts Options, log *logBuf) (*Store, error) {
	t.Helper()
	if log != nil {
		opts.Logf = log.logf
	}
	if opts.Probe == 0 {
		opts.Probe = -1
	}
	return OpenJournal([]Dir{{dirA, fsA}, {dirB, fsB}}, opts, journal.Options{SegmentSize: 16 << 10})
}

func mustOpen(t testing.TB, fsA, fsB vfs.FS, opts Options, log *logBuf) *Store {
	t.Helper()
	s, err := open(t, fsA, fsB, opts, log)
	if err != nil {
		t.Fatalf("Open: %v\n%v", err, log)
	}
	return s
}

func msg(i int) *store.Message {
	return &store.Message{Queue: "/queue/q", Headers: []store.Header{{Key: "i", Value: fmt.Sprint(i)}},
		Body: bytes.Repeat([]byte{byte('a' + i%26)}, 100+i%300)}
}

// send writes messages from..to-1, each in its own batch, and returns
// the seqs by message number.
func send(t testing.TB, s store.Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Write(bg, &store.Batch{Adds: []*store.Message{msg(i)}}); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
}

// bodies returns the recovered messages' numbers.
func numbers(t testing.TB, s store.Store) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	err := s.Recover(bg, func(m *store.Message) error {
		got[m.Headers[0].Value] = true
		return nil
	})
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	return got
}

func wantAll(t testing.TB, got map[string]bool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if !got[fmt.Sprint(i)] {
			t.Fatalf("acknowledged message %d lost (recovered %d)", i, len(got))
		}
	}
}

func states(s *Set) string {
	var out []string
	for _, st := range s.Status() {
		out = append(out, st.State)
	}
	return strings.Join(out, ",")
}

// waitFor polls cond for up to a minute.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// identical fails unless both copies hold the same journal files.
func identical(t testing.TB, fs vfs.FS) {
	t.Helper()
	a := &mirror{dir: dirA, fs: fs}
	b := &mirror{dir: dirB, fs: fs}
	fa, _ := journalNames(a)
	fb, _ := journalNames(b)
	if strings.Join(fa, ",") != strings.Join(fb, ",") {
		t.Fatalf("copies hold different files: %v and %v", fa, fb)
	}
	for _, n := range fa {
		x, err1 := readFile(fs, a.path(n))
		y, err2 := readFile(fs, b.path(n))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Fatalf("%s differs between the copies (%v, %v)", n, err1, err2)
		}
	}
}

func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, fi.Size())
	n, err := f.ReadAt(buf, 0)
	if n == len(buf) {
		err = nil
	}
	return buf[:n], err
}
