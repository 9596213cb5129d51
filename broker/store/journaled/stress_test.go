package journaled

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// TestConcurrentWithCheckpoints: writers add, ack and Load while the
// checkpointer rotates and applies every few milliseconds; after a crash
// the reopened store holds exactly the unacknowledged messages.
func TestConcurrentWithCheckpoints(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			opts := freshOptions(t, kind)
			opts.Interval = 3 * time.Millisecond
			s := mustOpen(t, opts)
			recovered(t, s)
			const writers, each = 8, 60
			var (
				mu   sync.Mutex
				live = map[uint64]string{}
				wg   sync.WaitGroup
				errs = make(chan error, writers)
			)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					var mine []*store.Message
					for i := 0; i < each; i++ {
						m := msg(w*1000 + i)
						b := &store.Batch{Adds: []*store.Message{m}}
						if i%3 == 2 {
							b.Acks = []uint64{mine[0].Seq}
						}
						before := stat(s, "checkpoints_total")
						if err := s.Write(ctx, b); err != nil {
							errs <- err
							return
						}
						if w == 0 && (i == each/3 || i == 2*each/3) {
							// Under load the writes can end before the
							// checkpointer's ticks: hold writer 0 until a
							// checkpoint has applied this write's
							// generation, which begins after before.
							if err := checkpointedSince(s, before); err != nil {
								errs <- err
								return
							}
						}
						mu.Lock()
						live[m.Seq] = string(m.Body)
						if len(b.Acks) > 0 {
							delete(live, mine[0].Seq)
							mine = mine[1:]
						}
						mu.Unlock()
						mine = append(mine, m)
						old := mine[len(mine)/2]
						if body, err := s.Load(ctx, old.Seq); err != nil || string(body) != string(old.Body) {
							errs <- fmt.Errorf("Load(%d) = %q, %v", old.Seq, body, err)
							return
						}
					}
				}(w)
			}
			began := time.Now()
			wg.Wait()
			took := time.Since(began)
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			cps := stat(s, "checkpoints_total")
			if cps < 2 {
				t.Fatalf("only %v checkpoints ran during the writes", cps)
			}
			crash(t, s)
			s = mustOpen(t, opts)
			defer s.Close()
			got := recovered(t, s)
			if fmt.Sprint(got) != fmt.Sprint(live) {
				t.Fatalf("recovered %d messages, want %d", len(got), len(live))
			}
			t.Logf("%d checkpoints during %d writes in %v; %d live recovered", int(cps), writers*each, took, len(got))
		})
	}
}

// checkpointedSince waits until checkpoints_total exceeds before, which a
// checkpointer that runs at all reaches once it applies the generation
// holding a write made after before was read.
func checkpointedSince(s *Store, before float64) error {
	deadline := time.Now().Add(30 * time.Second)
	for stat(s, "checkpoints_total") <= before {
		if time.Now().After(deadline) {
			return fmt.Errorf("no checkpoint within 30s of a write (checkpoints_total %v)", before)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// TestFencedCheckpointFailsStore: a checkpoint whose Fence refuses (the
// lease is gone) fails the store; the journal keeps what it had.
func TestFencedCheckpointFailsStore(t *testing.T) {
	opts := freshOptions(t, "sqlite")
	var fenced atomic.Bool
	errGone := errors.New("lease gone")
	opts.SQL.Fence = func(context.Context, *sql.Tx) error {
		if fenced.Load() {
			return errGone
		}
		return nil
	}
	s := mustOpen(t, opts)
	recovered(t, s)
	addN(t, s, 0, 3)
	checkpoint(t, s)
	kept := addN(t, s, 3, 2)
	fenced.Store(true)
	if err := s.Checkpoint(ctx); !errors.Is(err, errGone) || !errors.Is(err, store.ErrFailed) {
		t.Fatalf("fenced Checkpoint = %v, want the fence's error and store.ErrFailed", err)
	}
	if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{msg(9)}}); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Write after a fenced checkpoint = %v, want store.ErrFailed", err)
	}
	s.Close()
	fenced.Store(false)
	s = mustOpen(t, opts)
	defer s.Close()
	got := recovered(t, s)
	if len(got) != 5 || got[kept[1].Seq] != "body 4" {
		t.Fatalf("recovered %v, want the 3 checkpointed and 2 journaled messages", got)
	}
}
