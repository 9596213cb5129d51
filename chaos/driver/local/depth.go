package local

import (
	"context"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// QueueDepth asks a refbroker node's admin endpoint (GET /status, its
// queues' depth and inflight); a command broker's rules are its own, so
// ok is false for it, as for a node that does not answer.
func (d *Driver) QueueDepth(ctx context.Context, name, dest string) (int, bool) {
	n, err := d.node(name)
	if err != nil || n.spec.Broker.Kind != scenario.RefBroker || n.admin == "" {
		return 0, false
	}
	return driver.RefBrokerQueueDepth(ctx, n.admin, dest)
}
