package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/broker/store/faultstore"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

func TestFailStopOnSendWrite(t *testing.T) {
	st := faultstore.New(memstore.New(), 2)
	b, addr := startBroker(t, st, Options{})
	consumer := rawDial(t, addr)
	consumer.connect()
	consumer.write("SUBSCRIBE\nid:0\ndestination:/queue/other\nreceipt:s\n\n\x00")
	consumer.expect("RECEIPT")

	p := rawDial(t, addr)
	p.connect()
	for _, r := range []string{"1", "2"} {
		p.write("SEND\ndestination:/queue/f\npersistent:true\nreceipt:" + r + "\n\nok\x00")
		if f := p.expect("RECEIPT"); f.Get("receipt-id") != r {
			t.Fatalf("receipt %q", f.Get("receipt-id"))
		}
	}
	p.write("SEND\ndestination:/queue/f\npersistent:true\nreceipt:3\n\nfails\x00")
	f := p.expect("ERROR") // and no RECEIPT before it
	if !strings.Contains(string(f.Body), faultstore.ErrInjected.Error()) {
		t.Fatalf("ERROR body %q does not name the store error", f.Body)
	}
	p.expectClosed()
	select {
	case <-b.Failed():
	default:
		t.Fatal("Failed not closed")
	}
	if !errors.Is(b.Err(), faultstore.ErrInjected) {
		t.Fatalf("Err() = %v", b.Err())
	}
	if b.Ready() {
		t.Fatal("failed broker reports ready")
	}
	// Every other client is told too.
	if f := consumer.expect("ERROR"); f.Get("message") != "broker failed" {
		t.Fatalf("consumer ERROR %v", f.Headers)
	}
	consumer.expectClosed()
	// Later clients get no receipt, for persistent or other sends.
	late := rawDial(t, addr)
	late.write("CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/queue/f\nreceipt:4\n\nlate\x00")
	late.expect("ERROR")
	late.expectClosed()
	if n := st.Failures(); n != 1 {
		t.Fatalf("store saw %d failed writes, want exactly 1 (no retry)", n)
	}
}

func TestFailStopOnAckWrite(t *testing.T) {
	st := faultstore.New(memstore.New(), -1)
	b, addr := startBroker(t, st, Options{})
	r := rawDial(t, addr)
	r.connect()
	r.write("SEND\ndestination:/queue/a\npersistent:true\nreceipt:1\n\nm\x00")
	r.expect("RECEIPT")
	r.write("SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client\n\n\x00")
	m := r.expect("MESSAGE")
	st.Fail()
	r.write("ACK\nid:" + m.Get("ack") + "\nreceipt:2\n\n\x00")
	r.expect("ERROR")
	r.expectClosed()
	<-b.Failed()
	if !errors.Is(b.Err(), faultstore.ErrInjected) {
		t.Fatalf("Err() = %v", b.Err())
	}
}

// TestFailMessage: Options.FailMessage names the failure in the ERROR
// frames' message header, for the failing client, the others, and a
// CONNECT that arrives after.
func TestFailMessage(t *testing.T) {
	st := faultstore.New(memstore.New(), 1)
	const msg = "database unavailable, reconnecting"
	b, addr := startBroker(t, st, Options{FailMessage: func(err error) string {
		if errors.Is(err, faultstore.ErrInjected) {
			return msg
		}
		return ""
	}})
	other := rawDial(t, addr)
	other.connect()
	p := rawDial(t, addr)
	p.connect()
	p.write("SEND\ndestination:/queue/f\npersistent:true\nreceipt:1\n\nok\x00")
	p.expect("RECEIPT")
	p.write("SEND\ndestination:/queue/f\npersistent:true\nreceipt:2\n\nfails\x00")
	if f := p.expect("ERROR"); f.Get("message") != msg || !strings.Contains(string(f.Body), faultstore.ErrInjected.Error()) {
		t.Fatalf("failing client's ERROR %v %q", f.Headers, f.Body)
	}
	<-b.Failed()
	if f := other.expect("ERROR"); f.Get("message") != msg {
		t.Fatalf("other client's ERROR %v", f.Headers)
	}
	late := rawDial(t, addr)
	late.write("CONNECT\naccept-version:1.2\n\n\x00")
	if f := late.expect("ERROR"); f.Get("message") != msg {
		t.Fatalf("late CONNECT's ERROR %v", f.Headers)
	}
}
