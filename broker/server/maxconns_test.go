package server

import (
	"testing"
)

// TestMaxConnections: past MaxConnections a connection is answered with
// an ERROR frame and closed, before it sends anything; once one closes,
// the next is served again.
func TestMaxConnections(t *testing.T) {
	b, addr := startBroker(t, nil, Options{MaxConnections: 2})
	r1, r2 := rawDial(t, addr), rawDial(t, addr)
	r1.connect()
	r2.connect()
	r3 := rawDial(t, addr)
	if f := r3.expect("ERROR"); f.Get("message") != "too many connections" {
		t.Fatalf("refusal %v %q", f.Headers, f.Body)
	}
	r3.expectClosed()
	if m := b.Metrics(); m.ConnectionsRefused != 1 || m.Connections != 2 {
		t.Fatalf("refused %d, connections %d", m.ConnectionsRefused, m.Connections)
	}
	r1.nc.Close()
	poll(t, "a closed connection to leave", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.conns) == 1
	})
	rawDial(t, addr).connect()
}
