package journaled

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

// Persistent sends of 1 KiB, side by side: the journal alone, the
// journaled-jdbc store (default checkpoint interval and size), and the jdbc
// store, each on PostgreSQL and SQLite, with 1 and 16 concurrent writers.
//
//	go test -run '^$' -bench . -benchtime 3s ./broker/store/journaled

func BenchmarkWriteJournal1(b *testing.B)            { benchWrite(b, openJournal, 1) }
func BenchmarkWriteJournal16(b *testing.B)           { benchWrite(b, openJournal, 16) }
func BenchmarkWriteJournaledPostgres1(b *testing.B)  { benchWrite(b, openJournaled("postgres"), 1) }
func BenchmarkWriteJournaledPostgres16(b *testing.B) { benchWrite(b, openJournaled("postgres"), 16) }
func BenchmarkWriteSQLPostgres1(b *testing.B)        { benchWrite(b, openSQL("postgres"), 1) }
func BenchmarkWriteSQLPostgres16(b *testing.B)       { benchWrite(b, openSQL("postgres"), 16) }
func BenchmarkWriteJournaledSQLite1(b *testing.B)    { benchWrite(b, openJournaled("sqlite"), 1) }
func BenchmarkWriteJournaledSQLite16(b *testing.B)   { benchWrite(b, openJournaled("sqlite"), 16) }
func BenchmarkWriteSQLSQLite1(b *testing.B)          { benchWrite(b, openSQL("sqlite"), 1) }
func BenchmarkWriteSQLSQLite16(b *testing.B)         { benchWrite(b, openSQL("sqlite"), 16) }

func openJournal(b *testing.B) store.Store {
	s, err := journal.Open(filepath.Join(b.TempDir(), "journal"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func openJournaled(kind string) func(b *testing.B) store.Store {
	return func(b *testing.B) store.Store {
		return mustOpen(b, Options{Dir: filepath.Join(b.TempDir(), "journal"), SQL: freshSQL(b, kind)})
	}
}

func openSQL(kind string) func(b *testing.B) store.Store {
	return func(b *testing.B) store.Store {
		s, err := sqlstore.Open(ctx, freshSQL(b, kind))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
}

// benchWrite runs b.N one-message Writes of 1 KiB from writers goroutines
// and reports msgs/s; for the journaled store also how many checkpoints
// ran and the lag at the end.
func benchWrite(b *testing.B, open func(b *testing.B) store.Store, writers int) {
	s := open(b)
	defer s.Close()
	if err := s.Recover(ctx, func(*store.Message) error { return nil }); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	b.SetBytes(int64(len(body)))
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/bench", Body: body}}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "msgs/s")
	if j, ok := s.(*Store); ok {
		st := j.Stats()
		b.ReportMetric(st["checkpoints_total"], "checkpoints")
		b.ReportMetric(st["checkpoint_lag_messages"], "lag-msgs")
	}
}
