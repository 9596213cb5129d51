package local

import (
	"fmt"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// freeAddr picks a free port on ip for a node. The broker binds it only
// when it starts, so another process on the machine can take it first:
// see retryPorts. A variable so that a test can hand out a taken port.
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

// canRepick reports whether n may move to new ports: a refbroker node
// (its peers and clients reach it only through the links, whose upstream
// follows) that has never been ready, so its addresses were given to
// nothing else yet.
func (n *node) canRepick() bool {
	return n.spec.Broker.Kind == scenario.RefBroker && !n.wasReady
}

// movePorts draws new ports for n, whose broker could not bind one, and
// points the links to n at them.
func (d *Driver) movePorts(n *node) error {
	old := [3]string{n.listen, n.admin, n.repl}
	if err := n.pickPorts(); err != nil {
		return fmt.Errorf("local: start %s: %w", n.spec.Name, err)
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
