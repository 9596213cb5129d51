package local

import (
	"errors"
	"fmt"
	"os"

	"github.com/lossbench/lossbench/broker/listenfd"
	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// A refbroker node's listen, admin and replication sockets are bound by
// the driver when it lays the node out and handed down to every run of
// the node as fd:3, fd:4 and fd:5 (broker/listenfd): nothing else can
// take them between the draw and the broker's bind, and a restart gets
// the very same sockets. The broker listens on them only while it serves
// (a standby refuses clients); the driver stops them listening when it
// reaps the process (stopSockets), so that the clients of a killed node
// are refused, not left in a backlog, and closes them with the driver.
//
// Other brokers bind their own ports, drawn free here; another process on
// the machine can take one first, and such a node's first start is
// retried on new ports (movePorts).

// sockFDs are the descriptors a refbroker node's sockets are inherited
// as, in the order of node.socks: listen, admin, replication.
var sockFDs = [3]int{3, 4, 5}

// bindSockets binds n's listen, admin and replication sockets.
func (n *node) bindSockets() error {
	addrs := [3]*string{&n.listen, &n.admin, &n.repl}
	for i := range addrs {
		f, addr, err := listenfd.Bind(n.ip)
		if err != nil {
			return fmt.Errorf("local: node %s: %w", n.spec.Name, err)
		}
		n.socks = append(n.socks, f)
		*addrs[i] = addr
	}
	return nil
}

// stopSockets stops n's sockets listening, after its process exited.
func (n *node) stopSockets() error {
	var errs []error
	for _, f := range n.socks {
		errs = append(errs, listenfd.Stop(f))
	}
	return errors.Join(errs...)
}

// closeSockets closes n's sockets, with the driver. n.socks stays as laid
// out: a Stop of a process that outlived Close fails on a closed file.
func (n *node) closeSockets() {
	for _, f := range n.socks {
		f.Close()
	}
}

// inheritedEnv points e's addresses at n's inherited sockets.
func (n *node) inheritedEnv(e *driver.NodeEnv) {
	if n.socks == nil {
		return
	}
	e.Listen, e.Admin, e.Repl = listenfd.Addr(sockFDs[0]), listenfd.Addr(sockFDs[1]), listenfd.Addr(sockFDs[2])
}

// extraFiles are the files n's process inherits: its sockets.
func (n *node) extraFiles() []*os.File { return n.socks }

// freeAddr picks a free port on ip for a node whose broker binds its own.
// A variable so that a test can hand out a taken port.
var freeAddr = osutil.FreeAddr

// portRetries bounds the starts of a node on new ports after its broker
// found one taken.
const portRetries = 3

// pickPorts draws n's listen, admin and replication addresses.
func (n *node) pickPorts() error {
	var err error
	if n.listen, err = freeAddr(n.ip); err != nil {
		return err
	}
	if n.admin, err = freeAddr(n.ip); err != nil {
		return err
	}
	n.repl, err = freeAddr(n.ip)
	return err
}

// canRepick reports whether n may move to new ports: a node whose
// broker binds its own (not refbroker, whose sockets the driver holds)
// and that has never been ready, so its addresses were given to nothing
// else yet (its peers and clients reach it only through the links, whose
// upstream follows). RabbitMQ is left out: its Erlang distribution and
// port mapper ports are drawn once for the cluster.
func (n *node) canRepick() bool {
	return n.socks == nil && n.spec.Broker.Kind != scenario.RabbitMQ && !n.wasReady
}

// movePorts draws new ports for n, whose broker could not bind one, and
// points the links to n at them.
func (d *Driver) movePorts(n *node) error {
	old := [3]string{n.listen, n.admin, n.repl}
	if err := n.pickPorts(); err != nil {
		return fmt.Errorf("local: start %s: %w", n.spec.Name, err)
	}
	if n.cluster != "" {
		n.cluster = n.repl // a nats cluster's routes come in on it
	}
	for _, l := range d.px.Links() {
		if l.ToNode != n.spec.Name {
			continue
		}
		up := n.listen
		if l.Port == "repl" {
			up = n.repl
		}
		if err := d.px.SetUpstream(l, up); err != nil {
			return err
		}
	}
	d.opt.Log("start %s: a port was taken (address already in use): listen, admin, repl %v -> %s %s %s",
		n.spec.Name, old, n.listen, n.admin, n.repl)
	return nil
}

// forgetExit drops the last exit recorded for node: a start the driver
// retried on new ports, which the broker did not decide.
func (d *Driver) forgetExit(node string) {
	d.exitMu.Lock()
	defer d.exitMu.Unlock()
	for i := len(d.exits) - 1; i >= 0; i-- {
		if d.exits[i].Node == node {
			d.exits = append(d.exits[:i], d.exits[i+1:]...)
			return
		}
	}
}
