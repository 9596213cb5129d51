package server

import (
	"net"
	"testing"

	"github.com/lossbench/lossbench/broker/stomp"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// TestWriteReceiptsKeepsOutboxOrder: the reader writes its RECEIPTs
// straight to the socket only when nothing is queued for the writer
// goroutine; behind a queued frame they are queued too, and the writer
// sends them in order.
func TestWriteReceiptsKeepsOutboxOrder(t *testing.T) {
	b, _ := startBroker(t, memstore.New(), Options{})
	ln := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- nc
	}()
	client := rawDial(t, ln.Addr().String())
	nc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	c := newConn(b, nc)
	c.cw.w = stomp.NewWriterSize(nc, 16<<10)

	// No writer goroutine runs yet: a RECEIPT reaches the client only
	// if writeReceipts wrote it itself.
	c.writeReceipts([]string{"direct"})
	if f := client.expect(stomp.RECEIPT); f.Get("receipt-id") != "direct" {
		t.Fatalf("receipt-id %q, want direct", f.Get("receipt-id"))
	}

	// A frame queued first: the RECEIPTs go behind it, in the outbox.
	c.out.push(outItem{f: errorFrame("first", "queued before the receipts", "")})
	c.writeReceipts([]string{"r1", "r2"})
	c.out.mu.Lock()
	queued := len(c.out.items)
	c.out.mu.Unlock()
	if queued != 3 {
		t.Fatalf("%d frames queued, want 3 (the first and two receipts)", queued)
	}

	// The writer busy (its lock held): queued as well.
	c.cw.mu.Lock()
	c.writeReceipts([]string{"r3"})
	c.cw.mu.Unlock()

	c.writerOn.Store(true)
	go c.writeLoop(0)
	if f := client.expect(stomp.ERROR); f.Get("message") != "first" {
		t.Fatalf("ERROR %v, want the queued one", f.Headers)
	}
	for _, want := range []string{"r1", "r2", "r3"} {
		if f := client.expect(stomp.RECEIPT); f.Get("receipt-id") != want {
			t.Fatalf("receipt-id %q, want %q", f.Get("receipt-id"), want)
		}
	}
	c.out.shutdown()
	<-c.writerDone
	client.expectClosed()
}
