package bench

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// TestLinkForwardsInOrder: what goes through a replication link comes
// out whole and in order, both ways, and its latency toxics add up to the
// round trip asked for.
func TestLinkForwardsInOrder(t *testing.T) {
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
	p, err := startLink("a->b", ln.Addr().String(), 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	got := map[string]int64{}
	for _, name := range []string{"rtt-upstream", "rtt-downstream"} {
		if w := p.Toxics.GetToxic(name); w != nil {
			got[w.Stream] = w.Toxic.(*toxics.LatencyToxic).Latency
		}
	}
	if got["upstream"] != 2 || got["downstream"] != 3 {
		t.Fatalf("latency toxics %v ms, want upstream 2 and downstream 3 (5 ms round trip)", got)
	}
	c, err := net.Dial("tcp", p.Listen)
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
	buf := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, want) {
		t.Fatal("bytes came back changed or out of order")
	}
	if _, err := startLink("x", ln.Addr().String(), 1500*time.Microsecond); err == nil || !strings.Contains(err.Error(), "whole milliseconds") {
		t.Fatalf("a 1.5 ms round trip: %v", err)
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
	for _, n := range []string{"replicated-received", "replicated-fsynced", "replicated-received-rtt1ms", "replicated-fsynced-rtt5ms", "replicated-async"} {
		if !seen[n] {
			t.Fatalf("no target %s", n)
		}
	}
}
