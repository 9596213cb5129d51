package jetstream_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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
	bin, conf, log string
	node           peers.NATSNode
	cmd            *exec.Cmd
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
	s := &server{bin: natsServer(t), conf: filepath.Join(dir, "nats.conf"), log: filepath.Join(dir, "nats.log"),
		node: peers.NATSNode{Name: "n1", Listen: addr(t), Monitor: addr(t),
			Data: filepath.Join(dir, "data"), Sync: sync}}
	if err := s.node.WriteConfig(s.conf); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command(s.bin, "-c", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: time.Second}
	end := time.Now().Add(60 * time.Second)
	for !peers.NATSReady(context.Background(), hc, s.node.Monitor) {
		if time.Now().After(end) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("nats-server not ready after 60s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// TestConformance runs the protocol suite on a real nats-server.
func TestConformance(t *testing.T) {
	s := startServer(t, "always")
	protocoltest.Run(t, protocoltest.Target{
		Protocol: jetstream.Protocol{Replicas: 1},
		Endpoint: workload.Endpoint{Name: "n1", Addr: s.node.Listen},
		Kill:     func(*testing.T) { s.kill() },
		Restart:  func(t *testing.T) { s.start(t) },
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
