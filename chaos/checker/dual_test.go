package checker_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/history"
)

// sendsTo are acknowledged sends of producer p to node every 100ms over
// [fromMS, toMS), each invoked 5ms before its ok; seqs from seq0.
func sendsTo(node, p string, seq0 uint64, fromMS, toMS int) []history.Event {
	var out []history.Event
	for ms, seq := fromMS, seq0; ms < toMS; ms, seq = ms+100, seq+1 {
		for _, e := range send(ms, p, seq) {
			e.Node = node
			out = append(out, e)
		}
	}
	return out
}

// TestDualActive: the detector catches two masters acknowledging at once
// (a split brain, or a paused master that resumed and acknowledged again
// after its standby took over) and stays silent on a failover.
func TestDualActive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ev      []history.Event
		windows int
		secs    float64
		nodes   []string
	}{
		{"one node", sendsTo("a1", "p0", 1, 0, 3000), 0, 0, nil},
		{"failover", join(sendsTo("a1", "p0", 1, 0, 3000), sendsTo("b1", "p0", 100, 5000, 8000)), 0, 0, nil},
		// A takeover quicker than the gap between two sends of a node:
		// the old master's last receipt came before the new one's first.
		{"quick failover", join(sendsTo("a1", "p0", 1, 0, 3000), sendsTo("b1", "p0", 100, 3000, 6000)), 0, 0, nil},
		{"two masters", join(sendsTo("a1", "p0", 1, 0, 6000), sendsTo("b1", "p1", 1, 3000, 9000)), 1, 2.905, []string{"a1", "b1"}},
		// a1 paused, b1 took over, a1 resumed and acknowledged again.
		{"resumed master", join(sendsTo("a1", "p0", 1, 0, 2000), sendsTo("b1", "p1", 1, 4000, 9000), sendsTo("a1", "p0", 100, 6000, 7000)),
			1, 0.905, []string{"a1", "b1"}},
	} {
		r := checker.Check(tc.ev, checker.Options{})
		got := 0.0
		var nodes []string
		for _, w := range r.DualActive {
			got += w.Seconds()
			nodes = w.Nodes
		}
		if len(r.DualActive) != tc.windows || math.Abs(r.DualActiveS-tc.secs) > 1e-6 || math.Abs(got-r.DualActiveS) > 1e-6 ||
			!reflect.DeepEqual(nodes, tc.nodes) {
			t.Errorf("%s: %d windows %+v, %.3fs; want %d, %.3fs, nodes %v", tc.name, len(r.DualActive), r.DualActive, r.DualActiveS, tc.windows, tc.secs, tc.nodes)
		}
		if v, ok := r.Metric("dual_active_s"); !ok || v != r.DualActiveS {
			t.Errorf("%s: metric dual_active_s %v %v", tc.name, v, ok)
		}
	}
}
