package journaled

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/storetest"
)

var ctx = context.Background()

var kinds = []string{"sqlite", "postgres"}

// TestConformance runs the store suite on each database with no
// checkpoint but Close's, and with a store that crashes instead of
// closing, so every reopen recovers from the journal; on SQLite also
// checkpointing after every Write (by size).
func TestConformance(t *testing.T) {
	for _, kind := range kinds {
		for _, mode := range []string{"close", "every-write", "crash"} {
			if mode == "every-write" && kind != "sqlite" {
				continue // the same code path on PostgreSQL; keeps the package under a minute
			}
			t.Run(kind+"/"+mode, func(t *testing.T) {
				storetest.Run(t, func(t *testing.T) storetest.Harness {
					opts := freshOptions(t, kind)
					if mode == "every-write" {
						opts.MaxBytes = 1
						opts.Interval = 0
					}
					return storetest.Harness{Durable: true, LargeBody: 1 << 20, Open: func(t *testing.T) store.Store {
						s := mustOpen(t, opts)
						if mode == "crash" {
							return crashOnClose{s}
						}
						return s
					}}
				})
			})
		}
	}
}

// crashOnClose is a Store whose Close is a crash.
type crashOnClose struct{ *Store }

func (c crashOnClose) Close() error { return c.close(false) }

func msg(i int) *store.Message {
	return &store.Message{Queue: "/queue/j", Headers: []store.Header{{Key: "n", Value: fmt.Sprint(i)}}, Body: []byte(fmt.Sprintf("body %d", i))}
}

func write(t *testing.T, s *Store, b *store.Batch) {
	t.Helper()
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func addN(t *testing.T, s *Store, from, n int) []*store.Message {
	t.Helper()
	var out []*store.Message
	for i := from; i < from+n; i++ {
		m := msg(i)
		write(t, s, &store.Batch{Adds: []*store.Message{m}})
		out = append(out, m)
	}
	return out
}

func recovered(t *testing.T, s *Store) map[uint64]string {
	t.Helper()
	got := map[uint64]string{}
	err := s.Recover(ctx, func(m *store.Message) error {
		if _, dup := got[m.Seq]; dup {
			return fmt.Errorf("seq %d recovered twice", m.Seq)
		}
		body := m.Body
		if body == nil {
			var err error
			if body, err = s.Load(ctx, m.Seq); err != nil {
				return err
			}
		}
		got[m.Seq] = string(body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkpoint(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
}

func stat(s *Store, key string) float64 { return s.Stats()[key] }

// TestCheckpointMovesAndSkips: a checkpoint moves live messages into the
// database, drops the generation, and never writes a message that was
// added and acked between two checkpoints.
func TestCheckpointMovesAndSkips(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			s := mustOpen(t, freshOptions(t, kind))
			defer s.Close()
			recovered(t, s)
			keep := addN(t, s, 0, 5)
			gone := addN(t, s, 5, 5)
			write(t, s, &store.Batch{Acks: []uint64{gone[0].Seq, gone[1].Seq, gone[2].Seq, gone[3].Seq, gone[4].Seq}})
			if got := stat(s, "checkpoint_lag_messages"); got != 5 {
				t.Fatalf("lag %v before checkpoint, want 5", got)
			}
			if stat(s, "checkpoint_lag_seconds") <= 0 {
				t.Fatal("lag seconds 0 with messages pending")
			}
			checkpoint(t, s)
			st := s.Stats()
			if st["checkpoint_lag_messages"] != 0 || st["checkpoint_lag_seconds"] != 0 || st["checkpoints_total"] != 1 {
				t.Fatalf("after checkpoint: %v", st)
			}
			if st["checkpoint_rows_inserted_total"] != 5 || st["checkpoint_rows_deleted_total"] != 0 {
				t.Fatalf("checkpoint wrote %v rows, deleted %v; want 5 and 0", st["checkpoint_rows_inserted_total"], st["checkpoint_rows_deleted_total"])
			}
			var rows int
			if err := s.db.QueryRow("SELECT COUNT(*) FROM lossbench_msgs").Scan(&rows); err != nil || rows != 5 {
				t.Fatalf("database has %d rows (%v), want 5", rows, err)
			}
			// Bodies now come from the database; acks of database rows are
			// journaled and delete them at the next checkpoint.
			if b, err := s.Load(ctx, keep[2].Seq); err != nil || string(b) != "body 2" {
				t.Fatalf("Load after checkpoint = %q, %v", b, err)
			}
			write(t, s, &store.Batch{Acks: []uint64{keep[0].Seq}})
			if got := stat(s, "checkpoint_lag_messages"); got != 0 {
				t.Fatalf("an ack of a checkpointed message counts as lag %v", got)
			}
			checkpoint(t, s)
			if err := s.db.QueryRow("SELECT COUNT(*) FROM lossbench_msgs").Scan(&rows); err != nil || rows != 4 {
				t.Fatalf("database has %d rows (%v), want 4", rows, err)
			}
			names, _ := os.ReadDir(s.opts.Dir)
			var gens int
			for _, n := range names {
				if _, ok := parseGenName(n.Name()); ok {
					gens++
				}
			}
			if gens > 2 { // current and spare
				t.Fatalf("%d generation directories after checkpoints, want current and spare only", gens)
			}
		})
	}
}

// TestCrashBetweenCommitAndTruncate: a generation whose checkpoint
// committed but whose directory survived (a crash between the COMMIT and
// the deletion) is not applied again: nothing lost, nothing duplicated,
// acks not undone.
func TestCrashBetweenCommitAndTruncate(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			opts := freshOptions(t, kind)
			s := mustOpen(t, opts)
			recovered(t, s)
			base := addN(t, s, 0, 6)
			checkpoint(t, s) // base is in the database
			more := addN(t, s, 6, 4)
			// This generation acks database rows and its own adds.
			write(t, s, &store.Batch{Acks: []uint64{base[0].Seq, base[1].Seq, more[0].Seq}})
			crash(t, s)

			// Keep a copy of the journal as it is before it is applied.
			saved := filepath.Join(t.TempDir(), "saved")
			if err := os.CopyFS(saved, os.DirFS(opts.Dir)); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, opts) // applies the generation and deletes it
			want := recovered(t, s)
			crash(t, s)
			if len(want) != 7 {
				t.Fatalf("recovered %d messages, want 7: %v", len(want), want)
			}
			// Put the applied generation back, as if the deletion never happened.
			if err := os.RemoveAll(opts.Dir); err != nil {
				t.Fatal(err)
			}
			if err := os.CopyFS(opts.Dir, os.DirFS(saved)); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(opts.Dir, "LOCK"))
			s = mustOpen(t, opts)
			defer s.Close()
			got := recovered(t, s)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after replaying an applied generation recovered\n%v\nwant\n%v", got, want)
			}
			next := addN(t, s, 100, 1)[0]
			for seq := range want {
				if next.Seq <= seq {
					t.Fatalf("seq %d handed out again (had %d)", next.Seq, seq)
				}
			}
		})
	}
}

// TestJournalLost: wiping the journal directory loses exactly the
// messages not yet checkpointed (the lag Stats reported), and nothing
// older; acks not yet checkpointed come back as redeliveries.
func TestJournalLost(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			opts := freshOptions(t, kind)
			s := mustOpen(t, opts)
			recovered(t, s)
			old := addN(t, s, 0, 20)
			write(t, s, &store.Batch{Acks: []uint64{old[0].Seq, old[1].Seq}})
			checkpoint(t, s)
			write(t, s, &store.Batch{Acks: []uint64{old[2].Seq}}) // lost: old[2] comes back
			fresh := addN(t, s, 20, 7)
			write(t, s, &store.Batch{Acks: []uint64{fresh[0].Seq}})
			lag := stat(s, "checkpoint_lag_messages")
			if lag != 6 {
				t.Fatalf("lag %v, want 6", lag)
			}
			crash(t, s)
			if err := os.RemoveAll(opts.Dir); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, opts)
			defer s.Close()
			got := recovered(t, s)
			for _, m := range old[2:] {
				if got[m.Seq] != string(m.Body) {
					t.Errorf("checkpointed message %d lost with the journal", m.Seq)
				}
			}
			lost := 0
			for _, m := range fresh[1:] {
				if _, ok := got[m.Seq]; !ok {
					lost++
				}
			}
			if lost == 0 || float64(lost) != lag {
				t.Fatalf("lost %d messages with the journal, lag said %v", lost, lag)
			}
			if len(got) != len(old)-2 {
				t.Fatalf("recovered %d messages, want %d", len(got), len(old)-2)
			}
			t.Logf("journal wiped: lag %v messages, lost %d, checkpointed %d all kept", lag, lost, len(got))
		})
	}
}

// TestCheckpointBySize: the checkpointer runs when the journal passes
// MaxBytes, without a timer.
func TestCheckpointBySize(t *testing.T) {
	opts := freshOptions(t, "sqlite")
	opts.MaxBytes = 4 << 10
	s := mustOpen(t, opts)
	defer s.Close()
	recovered(t, s)
	body := make([]byte, 1024)
	for i := 0; i < 40; i++ {
		write(t, s, &store.Batch{Adds: []*store.Message{{Queue: "/queue/big", Body: body}}})
	}
	for i := 0; i < 1000 && stat(s, "checkpoints_total") == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if stat(s, "checkpoints_total") == 0 {
		t.Fatal("no checkpoint after 40 KiB with MaxBytes 4 KiB")
	}
}
