package journal_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// TestTapSeesEveryBatchInLogOrder: concurrent writers; the tap sees each
// batch once, with its seqs set, in increasing seq order, before its
// Write returns; applying what the tap saw to a second journal gives the
// same messages.
func TestTapSeesEveryBatchInLogOrder(t *testing.T) {
	var mu sync.Mutex
	var seen []*store.Batch
	var copies []*store.Batch
	s, err := journal.Open("/j", journal.Options{FS: vfs.NewMem(), SegmentSize: 8 << 10, Tap: func(bs []*store.Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bs {
			seen = append(seen, b)
			c := &store.Batch{Acks: append([]uint64(nil), b.Acks...)}
			for _, m := range b.Adds {
				cm := *m
				cm.Body = append([]byte(nil), m.Body...)
				c.Adds = append(c.Adds, &cm)
			}
			copies = append(copies, c)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				b := &store.Batch{Adds: []*store.Message{{Queue: "/queue/q", Body: []byte(fmt.Sprintf("w%d-%d", w, i))}}}
				if err := s.Write(ctx, b); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				found := false
				for _, x := range seen {
					found = found || x == b
				}
				mu.Unlock()
				if !found {
					errs <- fmt.Errorf("Write of seq %d returned before the tap saw it", b.Adds[0].Seq)
					return
				}
				if i%2 == 0 {
					if err := s.Write(ctx, &store.Batch{Acks: []uint64{b.Adds[0].Seq}}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var last uint64
	for _, b := range copies {
		for _, m := range b.Adds {
			if m.Seq <= last {
				t.Fatalf("tap saw seq %d after %d", m.Seq, last)
			}
			last = m.Seq
		}
	}
	r, err := journal.Open("/r", journal.Options{FS: vfs.NewMem(), SegmentSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Apply(ctx, copies, s.NextSeq()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want, got := live(t, s), live(t, r)
	if len(want) != 200 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replica holds %d messages, master %d (want 200)", len(got), len(want))
	}
	if r.NextSeq() != s.NextSeq() {
		t.Fatalf("replica's next seq %d, master's %d", r.NextSeq(), s.NextSeq())
	}
}

func live(t *testing.T, s store.Store) []string {
	t.Helper()
	var out []string
	err := s.Recover(context.Background(), func(m *store.Message) error {
		out = append(out, fmt.Sprintf("%d:%s:%s", m.Seq, m.Queue, m.Body))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
