package runner

import (
	"context"
	"strings"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/workload"
)

// dests are the workload's destinations, or the default one.
func (r *run) dests() []string {
	if d := r.sc.Workload.Destinations; len(d) > 0 {
		return d
	}
	return []string{"/queue/lossbench"}
}

// depth is the driver's QueueDepth, nil when the driver cannot say.
func (r *run) depth() func(ctx context.Context, node, dest string) (int, bool) {
	if d, ok := r.drv.(driver.Depths); ok {
		return d.QueueDepth
	}
	return nil
}

// noteStall reports a stall: the consumers went quiet (or the drain ran
// out) while a broker that says its depth still held messages for them.
func (r *run) noteStall(ctx context.Context) {
	depth := r.depth()
	if depth == nil {
		return
	}
	for _, node := range r.sc.Topology.Nodes {
		n := node.Name
		if !r.drv.Running(n) {
			continue
		}
		for _, dest := range r.dests() {
			if k, ok := depth(ctx, n, dest); ok && k > 0 {
				r.note("stall: the consumers stopped receiving while %s held %d message(s) on %s; the final drain reads them with fresh connections", n, k, dest)
			}
		}
	}
}

// finalDrain reads what the consumers left, with fresh connections to
// every running node, until each broker is empty (where it says its
// depth) or quiet, within the scenario's drain time: a message a stalled
// consumer left in the broker is read, not counted as lost.
func (r *run) finalDrain(ctx context.Context, fo workload.Failover) {
	rec := r.sc.Workload.Recovery
	var eps []workload.Endpoint
	for _, ep := range fo.Endpoints {
		if r.drv.Running(ep.Name) {
			eps = append(eps, ep)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, rec.Drain.D())
	defer cancel()
	st := workload.FinalDrain{Dests: r.dests(), Endpoints: eps, Failover: fo, Quiet: rec.Quiet.D(), Depth: r.depth(),
		DeadLetter: workload.DeadLetterQueue}.Run(dctx, r.h)
	if st.Received > 0 {
		r.note("final drain: read %d message(s) the consumers had left in the broker (a consumer stalled or fell behind); they are not lost", st.Received)
	}
	if st.DeadLettered > 0 {
		r.note("final drain: read %d message(s) from dead-letter queues: the broker gave up delivering them after too many redeliveries; counted as dead_lettered, not lost", st.DeadLettered)
	}
	if len(st.Left) > 0 {
		r.note("final drain: the broker still held messages after %s: %s; they count as lost", rec.Drain, strings.Join(st.Left, ", "))
	}
}
