package checker

import (
	"sort"
	"time"
)

// DefaultActiveGap is how long a node may go without acknowledging and
// still count as the same period of activity (Options.ActiveGap).
const DefaultActiveGap = time.Second

// DualWindow is a period in which two or more different nodes
// acknowledged sends: two masters, whatever the HA strategy.
type DualWindow struct {
	Window
	// Nodes are the nodes active in the window, sorted.
	Nodes []string `json:"nodes"`
}

// span is one node's period of activity: the union of its acknowledged
// attempts' [invoke, ok] intervals, no more than the gap apart.
type span struct {
	node       string
	start, end time.Time
}

// ackSpan is one acknowledged attempt: node acknowledged it at some time
// between its invoke and its ok (the node the producer's connection went
// to, the history's Node).
type ackSpan = span

// dualActive finds the periods in which two different nodes acknowledged
// sends. Each acknowledged attempt says its node acknowledged somewhere
// in [invoke, ok]; a node's attempts no more than gap apart make one
// period of activity; two periods of different nodes that overlap are a
// dual-active window (the union of overlaps, per set of nodes). A failover
// does not count: the old master's last receipt arrives before the new
// one acknowledges anything, unless both acknowledged at once.
func dualActive(acks []ackSpan, gap time.Duration, sec func(time.Time) float64) ([]DualWindow, float64) {
	byNode := map[string][]ackSpan{}
	for _, a := range acks {
		if a.node != "" {
			byNode[a.node] = append(byNode[a.node], a)
		}
	}
	if len(byNode) < 2 {
		return nil, 0
	}
	var spans []span
	for node, as := range byNode {
		sort.Slice(as, func(i, j int) bool { return as[i].start.Before(as[j].start) })
		cur := span{node: node, start: as[0].start, end: as[0].end}
		for _, a := range as[1:] {
			if a.start.Sub(cur.end) > gap {
				spans = append(spans, cur)
				cur = span{node: node, start: a.start, end: a.end}
				continue
			}
			if a.end.After(cur.end) {
				cur.end = a.end
			}
		}
		spans = append(spans, cur)
	}
	// Sweep the span boundaries: wherever two or more nodes are active at
	// once, that stretch is dual-active.
	type edge struct {
		t    time.Time
		node string
		open bool
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.start, s.node, true}, edge{s.end, s.node, false})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].t.Equal(edges[j].t) {
			return edges[i].t.Before(edges[j].t)
		}
		return edges[i].open && !edges[j].open // a touch counts as overlap
	})
	active := map[string]int{}
	var out []DualWindow
	var total float64
	var cur *DualWindow
	var curStart time.Time
	var seen map[string]bool
	for _, e := range edges {
		if e.open {
			active[e.node]++
		} else if active[e.node]--; active[e.node] == 0 {
			delete(active, e.node)
		}
		switch {
		case len(active) >= 2 && cur == nil:
			cur, curStart = &DualWindow{}, e.t
			seen = map[string]bool{}
			fallthrough
		case len(active) >= 2:
			for n := range active {
				seen[n] = true
			}
		case cur != nil: // fewer than two active: the window ends
			cur.StartS, cur.EndS = sec(curStart), sec(e.t)
			for n := range seen {
				cur.Nodes = append(cur.Nodes, n)
			}
			sort.Strings(cur.Nodes)
			total += e.t.Sub(curStart).Seconds()
			out = append(out, *cur)
			cur = nil
		}
	}
	return out, total
}
