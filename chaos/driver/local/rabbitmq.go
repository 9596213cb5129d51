package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/chaos/freeport"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// rabbitCluster is what the rabbitmq nodes of a topology with two or more
// share: one cluster, formed as the nodes first start (each after the
// first joins the first with rabbitmqctl join_cluster), one Erlang cookie,
// and one port mapper that the driver runs for its whole life, so that
// killing a node leaves the others' registrations alone. Erlang's
// distribution between the nodes runs on 127.0.0.1, not through the link
// proxies: link faults do not apply between them.
type rabbitCluster struct {
	seed     string // the first rabbitmq node's name, which the others join
	cookie   string
	epmdPort int
	epmd     *proc // the port mapper, once started
}

// layoutRabbitMQ gives every rabbitmq node its Erlang ports and, when
// there are two or more, the cluster's shared port mapper and cookie.
func (d *Driver) layoutRabbitMQ() error {
	var names []string
	for _, name := range d.order {
		if d.nodes[name].spec.Broker.Kind == scenario.RabbitMQ {
			names = append(names, name)
		}
	}
	if len(names) > 1 {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("local: rabbitmq cookie: %w", err)
		}
		port, err := freeport.Port("127.0.0.1")
		if err != nil {
			return err
		}
		d.rabbit = &rabbitCluster{seed: names[0], cookie: strings.ToUpper(hex.EncodeToString(b)), epmdPort: port}
	}
	for _, name := range names {
		n := d.nodes[name]
		var err error
		if n.distPort, err = freeport.Port("127.0.0.1"); err != nil {
			return err
		}
		if d.rabbit != nil {
			n.epmdPort = d.rabbit.epmdPort
			n.joined = name == d.rabbit.seed
		} else if n.epmdPort, err = freeport.Port("127.0.0.1"); err != nil {
			return err
		}
	}
	return nil
}

// rabbitmq is a rabbitmq node's server settings.
func (n *node) rabbitmq() peers.RabbitMQNode {
	r := peers.RabbitMQNode{Name: n.spec.Name, Listen: n.listen, EPMDPort: n.epmdPort, DistPort: n.distPort,
		Dir: n.dir, Data: n.dataDir}
	if c := n.d.rabbit; c != nil {
		r.Cookie, r.SharedEPMD = c.cookie, true
	}
	return r
}

// startEPMD starts the cluster's port mapper unless it runs, and waits
// until it accepts connections.
func (d *Driver) startEPMD(ctx context.Context) error {
	c := d.rabbit
	d.rabbitMu.Lock()
	defer d.rabbitMu.Unlock()
	if c.epmd != nil && !c.epmd.exited() {
		return nil
	}
	argv := peers.EPMDArgv(c.epmdPort)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local: rabbitmq epmd: %w", err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	c.epmd = p
	d.state.addProc("epmd", p.pid)
	go func() {
		p.err = cmd.Wait()
		d.state.removeProc("epmd", p.pid)
		close(p.done)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.epmdPort))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("local: rabbitmq epmd on %s exited: %v", addr, p.err)
		case <-ctx.Done():
			return fmt.Errorf("local: rabbitmq epmd on %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopEPMD kills the cluster's port mapper; the nodes must be stopped.
func (d *Driver) stopEPMD() error {
	if d.rabbit == nil {
		return nil
	}
	d.rabbitMu.Lock()
	p := d.rabbit.epmd
	d.rabbitMu.Unlock()
	if p == nil {
		return nil
	}
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("local: rabbitmq epmd: %w", err)
	}
	<-p.done
	return nil
}

// joinRabbitMQ makes node n, started and ready, a member of the cluster
// the first time it runs (rabbitmqctl stop_app, join_cluster, start_app),
// then waits until it is ready again. Its membership is in its Mnesia
// store from then on: later starts rejoin by themselves.
func (d *Driver) joinRabbitMQ(ctx context.Context, n *node, p *proc) error {
	if d.rabbit == nil || n.joined {
		return nil
	}
	r := n.rabbitmq()
	seed := d.nodes[d.rabbit.seed].rabbitmq().NodeName()
	err := r.Join(ctx, seed, func(ctx context.Context, argv []string) (string, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), r.Env()...)
		cmd.Dir = n.dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	})
	if err != nil {
		return fmt.Errorf("local: %s: %w", n.spec.Name, err)
	}
	d.opt.Log("%s joined the rabbitmq cluster of %s", n.spec.Name, d.rabbit.seed)
	if err := n.waitReady(ctx, p); err != nil {
		return err
	}
	n.joined = true
	return nil
}
