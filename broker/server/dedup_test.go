package server

import (
	"context"
	"strings"
	"testing"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// TestDedupPerDestination: one dedup-id sent to two queues names two
// messages. Both are receipted and both must be stored, also across a
// restart, where the window is rebuilt per destination from the store.
func TestDedupPerDestination(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/a", "to-a", HeaderDedup, "order-42")
	sendP(t, p, "/queue/b", "to-b", HeaderDedup, "order-42")
	for _, q := range []string{"/queue/a", "/queue/b"} {
		if d, _ := queueDepth(b, q); d != 1 {
			t.Fatalf("%s depth %d after a receipted SEND, want 1", q, d)
		}
	}
	if n := st.Stats()["live_messages"]; n != 2 {
		t.Fatalf("store holds %v messages, want 2", n)
	}
	p.MustDisconnect()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	b2, addr2 := startBroker(t, st, Options{})
	p2 := dial(t, addr2)
	sendP(t, p2, "/queue/a", "to-a", HeaderDedup, "order-42") // retries: dropped
	sendP(t, p2, "/queue/b", "to-b", HeaderDedup, "order-42")
	sendP(t, p2, "/queue/c", "to-c", HeaderDedup, "order-42") // a new message
	if n := st.Stats()["live_messages"]; n != 3 {
		t.Fatalf("store holds %v messages after restart and retries, want 3", n)
	}
	if n := b2.Metrics().Duplicates; n != 2 {
		t.Fatalf("duplicates %d, want 2", n)
	}
	c := dial(t, addr2)
	for q, want := range map[string]string{"/queue/a": "to-a", "/queue/b": "to-b", "/queue/c": "to-c"} {
		s, err := c.Subscribe(q, gostomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(recv(t, s).Body); got != want {
			t.Fatalf("%s delivered %q, want %q", q, got, want)
		}
	}
}

// TestDedupConflict: a SEND whose dedup-id names another message in the
// same queue (another body, or a non-persistent original under a
// persistent retry) is not stored and gets an ERROR, never a RECEIPT; the
// SENDs before it in the same batch are stored and receipted.
func TestDedupConflict(t *testing.T) {
	for _, tc := range []struct{ name, first, retry string }{
		{"other body", "persistent:true\n\nbody-1", "persistent:true\n\nbody-2"},
		{"persistent retry of a non-persistent original", "\nbody", "persistent:true\n\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := memstore.New()
			b, addr := startBroker(t, st, Options{})
			r := rawDial(t, addr)
			r.connect()
			send := func(receipt, id, rest string) string {
				return "SEND\ndestination:/queue/x\ndedup-id:" + id + "\nreceipt:" + receipt + "\n" + rest + "\x00"
			}
			r.write(send("1", "k", tc.first))
			r.expect("RECEIPT")
			// One batch: an unrelated SEND, the conflicting retry, another.
			r.write(send("2", "other", "persistent:true\n\nz") + send("3", "k", tc.retry) + send("4", "later", "persistent:true\n\nz"))
			if f := r.expect("RECEIPT"); f.Get("receipt-id") != "2" {
				t.Fatalf("receipt %q, want 2", f.Get("receipt-id"))
			}
			f := r.expect("ERROR")
			if f.Get("message") != "dedup-id conflict" || f.Get("receipt-id") != "3" || !strings.Contains(string(f.Body), `"k"`) {
				t.Fatalf("ERROR %v %q", f.Headers, f.Body)
			}
			r.expectClosed()
			if d, _ := queueDepth(b, "/queue/x"); d != 2 {
				t.Fatalf("depth %d, want 2 (the original and receipt 2)", d)
			}
		})
	}
}

// TestDedupConflictInTransaction: a conflict fails the whole COMMIT.
func TestDedupConflictInTransaction(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/t", "one", HeaderDedup, "k")
	r := rawDial(t, addr)
	r.connect()
	r.write("BEGIN\ntransaction:t1\n\n\x00" +
		"SEND\ndestination:/queue/t\ntransaction:t1\npersistent:true\n\nfine\x00" +
		"SEND\ndestination:/queue/t\ntransaction:t1\npersistent:true\ndedup-id:k\n\ntwo\x00" +
		"COMMIT\ntransaction:t1\nreceipt:c\n\n\x00")
	if f := r.expect("ERROR"); f.Get("message") != "dedup-id conflict" || f.Get("receipt-id") != "c" {
		t.Fatalf("ERROR %v %q", f.Headers, f.Body)
	}
	if n := st.Stats()["live_messages"]; n != 1 {
		t.Fatalf("store holds %v messages, want 1: a failed COMMIT stores nothing", n)
	}
	if d, _ := queueDepth(b, "/queue/t"); d != 1 {
		t.Fatalf("depth %d, want 1", d)
	}
}

// bodylessRecover recovers messages without their bodies, as the journal
// and the SQL store do past their body budget.
type bodylessRecover struct{ *memstore.Store }

func (s bodylessRecover) Recover(ctx context.Context, fn func(*store.Message) error) error {
	return s.Store.Recover(ctx, func(m *store.Message) error { m.Body = nil; return fn(m) })
}

// TestDedupAfterRestartWithoutBodies: a retry across a restart is compared
// with its original's body, read back from the store.
func TestDedupAfterRestartWithoutBodies(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/r", "original", HeaderDedup, "k")
	p.MustDisconnect()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, addr2 := startBroker(t, bodylessRecover{st}, Options{})
	p2 := dial(t, addr2)
	sendP(t, p2, "/queue/r", "original", HeaderDedup, "k")
	if n := st.Stats()["live_messages"]; n != 1 {
		t.Fatalf("store holds %v, want 1", n)
	}
	r := rawDial(t, addr2)
	r.connect()
	r.write("SEND\ndestination:/queue/r\npersistent:true\ndedup-id:k\nreceipt:1\n\nchanged\x00")
	if f := r.expect("ERROR"); f.Get("message") != "dedup-id conflict" {
		t.Fatalf("ERROR %v %q", f.Headers, f.Body)
	}
}
