package bench

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDelayProxyForwardsInOrder: what goes through the delay proxy comes
// out whole and in order, both ways.
func TestDelayProxyForwardsInOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo
	}()
	p, err := startDelayProxy(ln.Addr().String(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []byte(strings.Repeat("0123456789", 50000))
	go func() {
		for i := 0; i < len(want); i += 7000 {
			c.Write(want[i:min(i+7000, len(want))])
		}
	}()
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes came back changed or out of order")
	}
}

// TestReplicatedTargets: both ack modes at the three round trips, each
// named apart.
func TestReplicatedTargets(t *testing.T) {
	seen := map[string]bool{}
	for _, tg := range ReplicatedTargets() {
		if seen[tg.Name] || tg.Replica == "" {
			t.Fatalf("target %+v", tg)
		}
		seen[tg.Name] = true
	}
	for _, n := range []string{"replicated-received", "replicated-fsynced", "replicated-received-rtt1ms", "replicated-fsynced-rtt5ms"} {
		if !seen[n] {
			t.Fatalf("no target %s", n)
		}
	}
}
