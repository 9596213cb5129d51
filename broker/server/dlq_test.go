package server

import (
	"context"
	"testing"

	"github.com/lossbench/lossbench/broker/store/faultstore"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// nackLoop receives and NACKs on r's subscription to queue until n
// MESSAGE frames came.
func nackLoop(r *raw, queue string, n int) {
	r.write("SUBSCRIBE\nid:1\ndestination:" + queue + "\nack:client-individual\n\n\x00")
	for range n {
		m := r.expect("MESSAGE")
		r.write("NACK\nid:" + m.Get("ack") + "\n\n\x00")
	}
}

// TestPoisonMessageDeadLettered: a message NACKed past MaxRedeliveries
// moves to /queue/DLQ.<name> with its original destination, is stored
// there once, and stays there across a restart.
func TestPoisonMessageDeadLettered(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{MaxRedeliveries: 3})
	p := dial(t, addr)
	sendP(t, p, "/queue/poison", "bad", HeaderDedup, "d1")
	r := rawDial(t, addr)
	r.connect()
	nackLoop(r, "/queue/poison", 4) // the delivery and 3 redeliveries
	poll(t, "the message in its DLQ", func() bool { d, _ := queueDepth(b, "/queue/DLQ.poison"); return d == 1 })
	if n := b.Metrics().MessagesRedelivered; n != 3 {
		t.Fatalf("%d redeliveries, want 3", n)
	}
	if d, f := queueDepth(b, "/queue/poison"); d != 0 || f != 0 {
		t.Fatalf("/queue/poison depth %d inflight %d, want empty", d, f)
	}
	if n := st.Stats()["live_messages"]; n != 1 {
		t.Fatalf("store holds %v messages, want the DLQ copy only", n)
	}
	p.MustDisconnect()
	r.nc.Close()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, addr2 := startBroker(t, st, Options{MaxRedeliveries: 3})
	c := rawDial(t, addr2)
	c.connect()
	c.write("SUBSCRIBE\nid:1\ndestination:/queue/DLQ.poison\n\n\x00")
	m := c.expect("MESSAGE")
	if string(m.Body) != "bad" || m.Get(HeaderOriginalDestination) != "/queue/poison" || m.Get(HeaderDedup) != "d1" {
		t.Fatalf("DLQ message %v %q", m.Headers, m.Body)
	}
}

// TestDeadLetterOnConsumerLoss: a consumer that leaves without acking
// hands the message back too; past the limit it is dead-lettered.
func TestDeadLetterOnConsumerLoss(t *testing.T) {
	b, addr := startBroker(t, nil, Options{MaxRedeliveries: 1})
	p := dial(t, addr)
	sendP(t, p, "/queue/crashy", "m")
	for range 2 {
		r := rawDial(t, addr)
		r.connect()
		r.write("SUBSCRIBE\nid:1\ndestination:/queue/crashy\nack:client\n\n\x00")
		r.expect("MESSAGE")
		r.nc.Close()
		poll(t, "the consumer gone", func() bool { return consumers(b, "/queue/crashy") == 0 })
	}
	poll(t, "the message in its DLQ", func() bool { d, _ := queueDepth(b, "/queue/DLQ.crashy"); return d == 1 })
	if n := b.Metrics().DeadLettered; n != 1 {
		t.Fatalf("dead-lettered %d", n)
	}
}

// TestDeadLetterMoveCrashSafe: when the store fails the move (the DLQ copy
// and the original's ack are one batch), the broker fails stop and the
// original is still stored in its queue.
func TestDeadLetterMoveCrashSafe(t *testing.T) {
	inner := memstore.New()
	st := faultstore.New(inner, 1) // the SEND; the move fails
	b, addr := startBroker(t, st, Options{MaxRedeliveries: 1})
	p := dial(t, addr)
	sendP(t, p, "/queue/q", "keep")
	r := rawDial(t, addr)
	r.connect()
	nackLoop(r, "/queue/q", 2)
	poll(t, "the broker failed", func() bool { return b.Err() != nil })
	b2 := New(inner, Options{Logf: testLogf(t)})
	if err := b2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Shutdown(context.Background()) })
	if d, _ := queueDepth(b2, "/queue/q"); d != 1 {
		t.Fatalf("/queue/q depth %d after a failed move, want 1", d)
	}
	if d, _ := queueDepth(b2, "/queue/DLQ.q"); d != 0 {
		t.Fatalf("DLQ depth %d, want 0", d)
	}
}
