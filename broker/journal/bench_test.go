package journal

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Journal appends on the real disk (b.TempDir) with the default options:
// 64 MiB preallocated segments, group commit (fsync=batch). Compare with
// BenchmarkFdatasync4KiB from the same run: the disk's own limit.
func BenchmarkAppend1x256B(b *testing.B)   { benchmarkAppend(b, 1, 256) }
func BenchmarkAppend1x1KiB(b *testing.B)   { benchmarkAppend(b, 1, 1<<10) }
func BenchmarkAppend1x16KiB(b *testing.B)  { benchmarkAppend(b, 1, 16<<10) }
func BenchmarkAppend16x256B(b *testing.B)  { benchmarkAppend(b, 16, 256) }
func BenchmarkAppend16x1KiB(b *testing.B)  { benchmarkAppend(b, 16, 1<<10) }
func BenchmarkAppend16x16KiB(b *testing.B) { benchmarkAppend(b, 16, 16<<10) }
func BenchmarkAppend64x256B(b *testing.B)  { benchmarkAppend(b, 64, 256) }
func BenchmarkAppend64x1KiB(b *testing.B)  { benchmarkAppend(b, 64, 1<<10) }
func BenchmarkAppend64x16KiB(b *testing.B) { benchmarkAppend(b, 64, 16<<10) }

// benchmarkAppend has writers goroutines append single-message batches
// of size bytes until b.N are durable.
func benchmarkAppend(b *testing.B, writers, size int) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.waitPrealloc()
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	cpu0, cs0 := cpuUsage(b)
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n.Add(1) <= int64(b.N) {
				m := &store.Message{Queue: "/queue/bench", Headers: []store.Header{{Key: "persistent", Value: "true"}}, Body: body}
				if err := s.Write(bg, &store.Batch{Adds: []*store.Message{m}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	// The process's CPU time and context switches per append (writers
	// included): unlike appends/s, they hardly depend on the disk's
	// speed or on other work on the machine.
	cpu1, cs1 := cpuUsage(b)
	b.ReportMetric(float64(cpu1-cpu0)/1e3/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(cs1-cs0)/float64(b.N), "ctxsw/op")
	st := s.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(st["fsyncs_total"]/b.Elapsed().Seconds(), "fsyncs/s")
	// Shares of the time the writer spent in fdatasync and waiting for
	// writers to come back (see take).
	b.ReportMetric(st["fsync_seconds_total"]/b.Elapsed().Seconds(), "syncfrac")
	b.ReportMetric(st["group_wait_seconds_total"]/b.Elapsed().Seconds(), "waitfrac")
	if f := st["fsyncs_total"]; f > 0 {
		b.ReportMetric(float64(b.N)/f, "appends/fsync")
	}
}

// cpuUsage returns the process's user and system CPU time so far, in
// nanoseconds, and its context switches (voluntary and involuntary).
func cpuUsage(b *testing.B) (int64, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), ru.Nvcsw + ru.Nivcsw
}

// waitPrealloc waits for the background preallocation Open started, so a
// benchmark does not time it. Call it before the first Write.
func (s *Store) waitPrealloc() {
	r := <-s.next
	ch := make(chan preallocResult, 1)
	ch <- r
	s.next = ch
}

// BenchmarkFdatasync4KiB is the disk's own limit: 4 KiB pwrite plus
// fdatasync into a preallocated file, as the journal does, through the
// same vfs.Default.
func BenchmarkFdatasync4KiB(b *testing.B) { benchmarkFdatasync(b, true) }

// BenchmarkFdatasync4KiBAppend is the same into a growing file, where each
// fdatasync must also flush the new file size: what preallocation avoids.
func BenchmarkFdatasync4KiBAppend(b *testing.B) { benchmarkFdatasync(b, false) }

func benchmarkFdatasync(b *testing.B, prealloc bool) {
	const block, fileSize = 4 << 10, 64 << 20
	path := filepath.Join(b.TempDir(), "sync")
	f, err := vfs.Default.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if prealloc {
		for off := int64(0); off < fileSize; off += int64(len(zeros)) {
			if _, err := f.WriteAt(zeros, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, block)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(block)
	b.ResetTimer()
	var off int64
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		off += block
		if off+block > fileSize {
			if !prealloc {
				if err := f.Truncate(0); err != nil {
					b.Fatal(err)
				}
			}
			off = 0
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}
