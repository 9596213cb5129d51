package mirror

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
)

// BenchmarkRebuildCost measures what an online rebuild costs the writers,
// on the real filesystem (both copies on one disk, so the rebuild's reads
// and writes share it with the journal's): 16 writers of 1 KiB messages,
// first while the second copy is rebuilt from 256 MiB of journal, then as
// long again with both copies healthy. It reports both rates and
// rebuild_ratio, the first over the second, measured side by side.
//
//	go test -run '^$' -bench RebuildCost -benchtime 1x ./broker/journal/mirror
func BenchmarkRebuildCost(b *testing.B) {
	for range b.N {
		benchRebuildCost(b)
	}
}

func benchRebuildCost(b *testing.B) {
	b.StopTimer()
	root := b.TempDir()
	dirs := []Dir{{Path: filepath.Join(root, "a", "journal")}, {Path: filepath.Join(root, "b", "journal")}}
	jo := journal.Options{SegmentSize: 16 << 20}
	s, err := OpenJournal(dirs, Options{Probe: -1}, jo)
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	for i := 0; i < 256<<20/len(body)/32; i++ { // live data the rebuild copies
		batch := &store.Batch{}
		for range 32 {
			batch.Adds = append(batch.Adds, &store.Message{Queue: "/queue/fill", Body: body})
		}
		if err := s.Write(bg, batch); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	if err := os.RemoveAll(dirs[1].Path); err != nil {
		b.Fatal(err)
	}
	s, err = OpenJournal(dirs, Options{Probe: -1}, jo)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.StartTimer()
	rebuilding, took := writeUntil(b, s, func(time.Duration) bool { return s.Mirrors()[1].State == Healthy })
	steady, _ := writeUntil(b, s, func(d time.Duration) bool { return d >= took })
	b.StopTimer()
	b.ReportMetric(rebuilding, "msgs/s_rebuilding")
	b.ReportMetric(steady, "msgs/s_steady")
	b.ReportMetric(rebuilding/steady, "rebuild_ratio")
	b.ReportMetric(took.Seconds(), "rebuild_s")
}

// writeUntil has 16 writers send 1 KiB messages until done says so, and
// returns their rate and how long they ran.
func writeUntil(b *testing.B, s *Store, done func(time.Duration) bool) (float64, time.Duration) {
	msg := bytes.Repeat([]byte("m"), 1024)
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Write(bg, &store.Batch{Adds: []*store.Message{{Queue: "/queue/q", Body: msg}}}); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	start := time.Now()
	for !done(time.Since(start)) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	d := time.Since(start)
	return float64(n.Load()) / d.Seconds(), d
}
