package journaled

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// TestDatabaseDown: with the database killed the store keeps
// acknowledging writes from the journal, checkpoints fail without failing
// the store and the lag grows; once the database is back the next
// checkpoint catches up, and nothing acknowledged meanwhile is lost.
func TestDatabaseDown(t *testing.T) {
	opts := freshOptions(t, "postgres")
	srv := postgres(t)
	s := mustOpen(t, opts)
	recovered(t, s)
	before := addN(t, s, 0, 5)
	checkpoint(t, s)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			srv.Restart(context.Background())
		}
	}()
	during := addN(t, s, 5, 5)
	write(t, s, &store.Batch{Acks: []uint64{before[0].Seq}})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := s.Checkpoint(cctx)
	cancel()
	if err == nil || errors.Is(err, store.ErrFailed) {
		t.Fatalf("Checkpoint with the database down = %v, want a plain error", err)
	}
	if lag := stat(s, "checkpoint_lag_messages"); lag != 5 || stat(s, "checkpoint_errors_total") == 0 {
		t.Fatalf("lag %v, errors %v", lag, stat(s, "checkpoint_errors_total"))
	}
	more := addN(t, s, 10, 2) // still acknowledged, from the journal
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The pool's connections died with the server: allow a few attempts.
	for i := 0; ; i++ {
		if err = s.Checkpoint(ctx); err == nil || i == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Checkpoint after the database came back: %v", err)
	}
	if lag := stat(s, "checkpoint_lag_messages"); lag != 0 {
		t.Fatalf("lag %v after catching up", lag)
	}
	crash(t, s)
	if err := os.RemoveAll(opts.Dir); err != nil { // even without the journal now
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	got := recovered(t, s)
	for _, ms := range [][]*store.Message{before[1:], during, more} {
		for _, m := range ms {
			if got[m.Seq] != string(m.Body) {
				t.Fatalf("message %d acknowledged during the outage lost", m.Seq)
			}
		}
	}
	if len(got) != 11 {
		t.Fatalf("recovered %d messages, want 11", len(got))
	}
}
