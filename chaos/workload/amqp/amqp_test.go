package amqp_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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
	log  string
	cmd  *exec.Cmd
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
	s := &server{log: filepath.Join(dir, "console.log"), node: peers.RabbitMQNode{Name: "t" + filepath.Base(dir),
		Listen: listen, EPMDPort: port(t), DistPort: port(t), Dir: dir, Data: filepath.Join(dir, "data")}}
	if err := s.node.Write(); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(s.kill)
	return s
}

func (s *server) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	argv := s.node.Argv()
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(os.Environ(), s.node.Env()...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(120 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", s.node.Listen, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(end) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("rabbitmq not listening after 120s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill kills the node's process group (server and its epmd) with SIGKILL.
func (s *server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
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
		Kill:     func(*testing.T) { s.kill() },
		Restart:  func(t *testing.T) { s.start(t) },
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
