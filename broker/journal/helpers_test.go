package journal

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

var (
	iterations = flag.Int("iterations", 0, "crash-test iterations (0: 20, or 200 without -short)")
	seedFlag   = flag.Uint64("seed", 0, "first seed of the crash tests (0: fixed default)")
)

var bg = context.Background()

const testDir = "/j"

// logBuf collects Logf output for assertions.
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

func mustOpen(t testing.TB, fs vfs.FS, opts Options) *Store {
	t.Helper()
	opts.FS = fs
	s, err := Open(testDir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func testMsg(i int) *store.Message {
	return &store.Message{
		Queue:   fmt.Sprintf("/queue/%d", i%4),
		Headers: []store.Header{{Key: "i", Value: fmt.Sprint(i)}},
		Body:    []byte(strings.Repeat(fmt.Sprintf("<%d>", i), 1+i%13)),
	}
}

func addMsgs(t testing.TB, s *Store, msgs ...*store.Message) {
	t.Helper()
	if err := s.Write(bg, &store.Batch{Adds: msgs}); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func recovered(t testing.TB, s *Store) map[uint64]*store.Message {
	t.Helper()
	got := make(map[uint64]*store.Message)
	var last uint64
	err := s.Recover(bg, func(m *store.Message) error {
		if m.Seq <= last {
			return fmt.Errorf("Recover out of order: %d after %d", m.Seq, last)
		}
		last = m.Seq
		if m.Body == nil && m.Size > 0 {
			b, err := s.Load(bg, m.Seq)
			if err != nil {
				return err
			}
			m.Body = b
		}
		got[m.Seq] = m
		return nil
	})
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	return got
}

func sameMsg(a, b *store.Message) bool {
	if a.Seq != b.Seq || a.Queue != b.Queue || string(a.Body) != string(b.Body) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	return true
}

// segmentFiles lists the segment files in testDir.
func segmentFiles(t testing.TB, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			segs = append(segs, n)
		}
	}
	return segs
}

func contextWithCancel() (context.Context, context.CancelFunc) { return context.WithCancel(bg) }
