package server

import (
	"context"
	"strconv"
	"testing"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/store/memstore"
)

// TestMaxSubscriptions: a connection past MaxSubscriptions gets ERROR
// "too many subscriptions"; others are unaffected.
func TestMaxSubscriptions(t *testing.T) {
	b, addr := startBroker(t, nil, Options{MaxSubscriptions: 3})
	r := rawDial(t, addr)
	r.connect()
	for i := range 3 {
		r.write("SUBSCRIBE\nid:" + strconv.Itoa(i) + "\ndestination:/queue/s\nreceipt:r\n\n\x00")
		r.expect("RECEIPT")
	}
	r.write("SUBSCRIBE\nid:3\ndestination:/queue/s\nreceipt:r3\n\n\x00")
	if f := r.expect("ERROR"); f.Get("message") != "too many subscriptions" || f.Get("receipt-id") != "r3" {
		t.Fatalf("ERROR %v %q", f.Headers, f.Body)
	}
	r.expectClosed()
	poll(t, "the subscriptions released", func() bool { return consumers(b, "/queue/s") == 0 })
	c := dial(t, addr)
	if _, err := c.Subscribe("/queue/s", gostomp.AckAuto); err != nil {
		t.Fatal(err)
	}
}

// TestMaxQueues: a SEND or SUBSCRIBE that would create a queue past
// MaxQueues gets ERROR "too many queues" and stores nothing; an empty,
// unused queue is dropped to make room; queues recovered from the store
// are never refused.
func TestMaxQueues(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{MaxQueues: 3})
	p := dial(t, addr)
	for i := range 3 {
		sendP(t, p, "/queue/q"+strconv.Itoa(i), "m")
	}
	for _, frame := range []string{
		"SEND\ndestination:/queue/q3\npersistent:true\nreceipt:x\n\nm\x00",
		"SUBSCRIBE\nid:1\ndestination:/queue/q3\nreceipt:x\n\n\x00",
	} {
		r := rawDial(t, addr)
		r.connect()
		r.write(frame)
		if f := r.expect("ERROR"); f.Get("message") != "too many queues" || f.Get("receipt-id") != "x" {
			t.Fatalf("ERROR %v %q", f.Headers, f.Body)
		}
	}
	if n := st.Stats()["live_messages"]; n != 3 {
		t.Fatalf("store holds %v, want 3", n)
	}
	c := rawDial(t, addr)
	c.connect()
	c.write("SUBSCRIBE\nid:1\ndestination:/queue/q0\nack:client-individual\n\n\x00")
	m := c.expect("MESSAGE")
	c.write("ACK\nid:" + m.Get("ack") + "\n\n\x00UNSUBSCRIBE\nid:1\nreceipt:u\n\n\x00")
	c.expect("RECEIPT")
	sendP(t, p, "/queue/q3", "m") // q0, drained and unused, is dropped to make room
	if n := len(b.Status().Queues); n != 3 {
		t.Fatalf("%d queues, want 3", n)
	}
	p.MustDisconnect()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b2, _ := startBroker(t, st, Options{MaxQueues: 1})
	if n := len(b2.Status().Queues); n != 3 {
		t.Fatalf("recovered %d queues under MaxQueues 1, want all 3", n)
	}
}
