package amqp_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/freeport"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/workload"
	"github.com/lossbench/lossbench/chaos/workload/amqp"
	"github.com/lossbench/lossbench/chaos/workload/protocoltest"
)

// server is one real RabbitMQ node (Debian's package) on its own folder.
type server struct {
	node peers.RabbitMQNode
	protocoltest.Server
}

func port(t *testing.T) int {
	t.Helper()
	p, err := freeport.Port("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startServer(t *testing.T) *server {
	t.Helper()
	if err := peers.RabbitMQAvailable(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	listen, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{node: peers.RabbitMQNode{Name: "t" + filepath.Base(dir),
		Listen: listen, EPMDPort: port(t), DistPort: port(t), Dir: dir, Data: filepath.Join(dir, "data")}}
	if err := s.node.Write(); err != nil {
		t.Fatal(err)
	}
	// The node's process group holds the server and its epmd.
	s.Server = protocoltest.Server{Name: "rabbitmq", Argv: s.node.Argv(), Env: s.node.Env(),
		Log: filepath.Join(dir, "console.log"), Within: 120 * time.Second,
		Ready: func() bool {
			c, err := net.DialTimeout("tcp", listen, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		}}
	s.Start(t)
	t.Cleanup(s.Kill)
	return s
}

// TestRabbitMQ runs the protocol suite on a real RabbitMQ, durable classic
// queues, and then checks that a retried publish is not deduplicated (one
// server: a start takes 10-20 s).
func TestRabbitMQ(t *testing.T) {
	s := startServer(t)
	t.Run("NoDeduplication", func(t *testing.T) { noDeduplication(t, s) })
	protocoltest.Run(t, protocoltest.Target{
		Protocol: amqp.Protocol{QueueType: amqp.Classic},
		Endpoint: workload.Endpoint{Name: "r1", Addr: s.node.Listen},
		Kill:     func(*testing.T) { s.Kill() },
		Restart:  s.Start,
	})
}

// noDeduplication: RabbitMQ keeps a retried publish of the same id (an
// unknown outcome retried) as a second message; the checker counts it as
// a duplicate.
func noDeduplication(t *testing.T, s *server) {
	c, err := amqp.Protocol{}.Dial(context.Background(), workload.Endpoint{Addr: s.node.Listen},
		workload.DialOptions{Timeout: 5 * time.Second, SendTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	m := workload.Outgoing{Producer: "p0", Seq: 1, ID: workload.MessageID("dup", "p0", 1), Attempt: 1, TS: 1, Body: []byte("x")}
	for i := 0; i < 2; i++ {
		if err := c.Send("/queue/dup", []workload.Outgoing{m}, false); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := c.Subscribe("/queue/dup", workload.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case d := <-sub.C():
			if d.Err != nil || d.ID != m.ID {
				t.Fatalf("delivery %d: %+v", i, d)
			}
			_ = sub.Ack(d)
		case <-time.After(30 * time.Second):
			t.Fatalf("%d deliveries of the retried message, want 2", i)
		}
	}
}
