package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lossbench/lossbench/broker/store"
)

// TestZombieCommitAfterReopen: a commit of an earlier session lands after
// a new session opened (a partition heals and the old connection's held
// INSERT reaches the server; the broker had reconnected or been
// restarted meanwhile). The row carries the seq the old session would
// have used next; the new session must not hand that seq out, or its own
// commit would fail on the primary key. The zombie row itself is a
// message nobody was told was stored: recovered later, a duplicate of an
// unacknowledged send at worst.
func TestZombieCommitAfterReopen(t *testing.T) {
	forEach(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		opts := freshOptions(t, tg)
		old := mustOpen(t, opts)
		a := &store.Message{Queue: "q", Body: []byte("a")}
		if err := old.Write(ctx, &store.Batch{Adds: []*store.Message{a}}); err != nil {
			t.Fatal(err)
		}
		old.Close() // the old session is gone; its next commit is in flight

		s := mustOpen(t, opts)
		ph := "?"
		if tg.name == "postgres" {
			ph = "$%d"
		}
		// Headers column: format version 1, no headers.
		q := "INSERT INTO lossbench_msgs (seq, queue, headers, body) VALUES (" + phs(ph, 4) + ")"
		zombie := int64(a.Seq + 1) // what the old session handed out next
		if _, err := s.DB().ExecContext(ctx, q, zombie, []byte("q"), []byte{1, 0}, []byte("zombie")); err != nil {
			t.Fatalf("zombie insert: %v", err)
		}
		b := &store.Message{Queue: "q", Body: []byte("b")}
		if err := s.Write(ctx, &store.Batch{Adds: []*store.Message{b}}); err != nil {
			t.Fatalf("the new session's commit after a zombie row with seq %d: %v", zombie, err)
		}
		if int64(b.Seq) == zombie || b.Seq <= a.Seq {
			t.Fatalf("new session handed out seq %d (old: %d, zombie: %d)", b.Seq, a.Seq, zombie)
		}
		s.Close()

		s = mustOpen(t, opts)
		defer s.Close()
		var got []string
		if err := s.Recover(ctx, func(m *store.Message) error { got = append(got, string(m.Body)); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[a zombie b]" {
			t.Fatalf("recovered %v, want [a zombie b] (in seq order)", got)
		}
		t.Logf("%s: old session seq %d, zombie %d, new session %d", tg.name, a.Seq, zombie, b.Seq)
	})
}

// phs is n placeholders: "?" repeated, or "$%d" numbered from 1.
func phs(ph string, n int) string {
	out := ""
	for i := 1; i <= n; i++ {
		if i > 1 {
			out += ", "
		}
		if ph == "?" {
			out += "?"
		} else {
			out += fmt.Sprintf(ph, i)
		}
	}
	return out
}
