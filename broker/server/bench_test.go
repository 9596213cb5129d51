package server

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// End-to-end benchmarks over loopback with go-stomp: producers send
// persistent 1 KiB messages, each waiting for its RECEIPT, while one
// consumer drains with client-individual acks. msg/s counts messages both
// receipted and consumed.

func BenchmarkSendReceiptMem1(b *testing.B)  { benchSend(b, memstore.New(), 1, 1024) }
func BenchmarkSendReceiptMem16(b *testing.B) { benchSend(b, memstore.New(), 16, 1024) }

func BenchmarkSendReceiptJournalBatch1(b *testing.B) { benchSend(b, openJournal(b, "batch"), 1, 1024) }
func BenchmarkSendReceiptJournalBatch16(b *testing.B) {
	benchSend(b, openJournal(b, "batch"), 16, 1024)
}

func openJournal(b *testing.B, fsync string) store.Store {
	pol, err := journal.ParseSyncPolicy(fsync)
	if err != nil {
		b.Fatal(err)
	}
	st, err := journal.Open(filepath.Join(b.TempDir(), "journal"), journal.Options{Sync: pol})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// timedStore counts the broker's Writes and their time.
type timedStore struct {
	store.Store
	writes, ns atomic.Int64
}

func (s *timedStore) Write(ctx context.Context, b *store.Batch) error {
	t0 := time.Now()
	err := s.Store.Write(ctx, b)
	s.ns.Add(int64(time.Since(t0)))
	s.writes.Add(1)
	return err
}

func benchSend(b *testing.B, inner store.Store, producers, size int) {
	st := &timedStore{Store: inner}
	_, addr := startBroker(b, st, Options{Logf: func(string, ...any) {}})
	body := make([]byte, size)
	opts := []func(*gostomp.Conn) error{gostomp.ConnOpt.Logger(quietLogger{}), gostomp.ConnOpt.HeartBeat(0, 0)}
	cons, err := gostomp.Dial("tcp", addr, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cons.MustDisconnect()
	sub, err := cons.Subscribe("/queue/bench", gostomp.AckClientIndividual)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*gostomp.Conn, producers)
	for i := range conns {
		if conns[i], err = gostomp.Dial("tcp", addr, opts...); err != nil {
			b.Fatal(err)
		}
		defer conns[i].MustDisconnect()
	}
	var consumed atomic.Int64
	consumerDone := make(chan struct{})
	// go-stomp deadlocks a consumer that acks from the goroutine reading
	// sub.C once its channels fill, so a second goroutine acks.
	acks := make(chan *gostomp.Message, b.N)
	go func() {
		for m := range acks {
			cons.Ack(m)
		}
	}()
	go func() {
		defer close(consumerDone)
		defer close(acks)
		for n := 0; n < b.N; n++ {
			m, ok := <-sub.C
			if !ok || m.Err != nil {
				return
			}
			acks <- m
			consumed.Add(1)
		}
	}()
	var next atomic.Int64
	lat := make([][]time.Duration, producers)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := c.Send("/queue/bench", "application/octet-stream", body, gostomp.SendOpt.Receipt,
					gostomp.SendOpt.Header("persistent", "true")); err != nil {
					b.Error(err)
					return
				}
				lat[p] = append(lat[p], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	select {
	case <-consumerDone:
	case <-time.After(time.Minute):
		b.Fatalf("consumer got %d of %d", consumed.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	if ss, ok := inner.(store.Statser); ok {
		stats := ss.Stats()
		if n := stats["fsyncs_total"]; n > 0 {
			b.ReportMetric(n/float64(b.N), "fsyncs/msg")
			b.ReportMetric(stats["fsync_seconds_total"]/n*1e3, "fsync-ms")
		}
	}
	if n := st.writes.Load(); n > 0 {
		b.ReportMetric(float64(n)/float64(b.N), "writes/msg")
		b.ReportMetric(float64(st.ns.Load())/float64(n)/1e6, "write-ms")
	}
}
