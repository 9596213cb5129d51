package jetstream_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/freeport"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/workload"
	"github.com/lossbench/lossbench/chaos/workload/jetstream"
	"github.com/lossbench/lossbench/chaos/workload/protocoltest"
)

// server is one real nats-server with JetStream on a data folder.
type server struct {
	node peers.NATSNode
	protocoltest.Server
}

func natsServer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := peers.NATSServer(ctx)
	if err != nil {
		t.Skipf("no nats-server: %v", err)
	}
	return bin
}

func addr(t *testing.T) string {
	t.Helper()
	a, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func startServer(t *testing.T, sync string) *server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	s := &server{node: peers.NATSNode{Name: "n1", Listen: addr(t), Monitor: addr(t),
		Data: filepath.Join(dir, "data"), Sync: sync}}
	if err := s.node.WriteConfig(conf); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: time.Second}
	s.Server = protocoltest.Server{Name: "nats-server", Argv: []string{natsServer(t), "-c", conf},
		Log: filepath.Join(dir, "nats.log"), Within: 60 * time.Second,
		Ready: func() bool { return peers.NATSReady(context.Background(), hc, s.node.Monitor) }}
	s.Start(t)
	t.Cleanup(s.Kill)
	return s
}

// TestConformance runs the protocol suite on a real nats-server.
func TestConformance(t *testing.T) {
	s := startServer(t, "always")
	protocoltest.Run(t, protocoltest.Target{
		Protocol: jetstream.Protocol{Replicas: 1},
		Endpoint: workload.Endpoint{Name: "n1", Addr: s.node.Listen},
		Kill:     func(*testing.T) { s.Kill() },
		Restart:  s.Start,
	})
}

// TestDuplicateIsDropped: a retried publish with the same id (an unknown
// outcome retried) is confirmed, and the stream keeps one message.
func TestDuplicateIsDropped(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	c, err := jetstream.Protocol{}.Dial(ctx, workload.Endpoint{Addr: s.node.Listen}, workload.DialOptions{Timeout: 5 * time.Second, SendTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	m := workload.Outgoing{Producer: "p0", Seq: 1, ID: workload.MessageID("dup", "p0", 1), Attempt: 1, TS: 1, Body: []byte("x")}
	for attempt := 1; attempt <= 3; attempt++ {
		m.Attempt = attempt
		if err := c.Send("/queue/dup", []workload.Outgoing{m}, false); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	sub, err := c.Subscribe("/queue/dup", workload.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-sub.C():
		if d.Err != nil || d.ID != m.ID {
			t.Fatalf("got %+v", d)
		}
		if err := sub.Ack(d); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	select {
	case d := <-sub.C():
		t.Fatalf("a second delivery: %+v", d)
	case <-time.After(time.Second):
	}
}

func TestStreamName(t *testing.T) {
	for in, want := range map[string]string{"/queue/lossbench": "lossbench", "/topic/a.b": "a_b", "x y": "x_y", "/queue/": "_"} {
		if got := jetstream.Stream(in); got != want {
			t.Errorf("Stream(%q) = %q, want %q", in, got, want)
		}
	}
}
