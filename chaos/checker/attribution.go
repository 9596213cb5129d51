package checker

import (
	"sort"
	"time"
)

// Parts of the history a lost message belongs to (see Attribution).
const (
	PartPrefix  = "prefix"
	PartMiddle  = "middle"
	PartPostfix = "postfix"
)

// BeforeAnyFault is the window of a message acknowledged before the first
// fault started (or in a run without faults).
const BeforeAnyFault = "before any fault"

// Attribution says where the lost messages come from: the fault window in
// force when each was acknowledged, the node that acknowledged it, and
// where in the history of acknowledgements it lies.
//
// Every acknowledged message, in the order of its first ok, makes the
// history. A lost message is in its prefix when every message acknowledged
// before it is lost too, in its postfix when every message acknowledged
// after it is lost too (a history lost from end to end is all prefix), and
// in its middle otherwise. Jepsen's analyses of NATS JetStream tell losses
// apart this way: a lost prefix is a log truncated from its start (a
// store that lost its files), a lost postfix what was acknowledged but not
// yet durable when the fault hit, a lost middle a hole the broker skipped.
type Attribution struct {
	Prefix  int `json:"prefix"`
	Middle  int `json:"middle"`
	Postfix int `json:"postfix"`
	// RPOS is the observed recovery point: how long before the fault the
	// oldest lost message was acknowledged, in seconds. The fault is the
	// first one not yet over when that message was acknowledged; 0 when it
	// was acknowledged inside a fault window, nil when nothing was lost or
	// no fault followed.
	RPOS *float64 `json:"rpo_s"`
	// Groups count the lost messages per (window, node), in the order of
	// their first loss.
	Groups []LossGroup `json:"groups"`
}

// LossGroup is the lost messages acknowledged in one window by one node.
type LossGroup struct {
	// Window is a fault's name (in force at the acknowledgement),
	// BeforeAnyFault, or "after " and the name of the last fault that had
	// ended.
	Window string `json:"window"`
	// Node is the broker address that acknowledged them.
	Node    string `json:"node"`
	Lost    int    `json:"lost"`
	Prefix  int    `json:"prefix"`
	Middle  int    `json:"middle"`
	Postfix int    `json:"postfix"`
	// FirstAckS and LastAckS bound their acknowledgements, seconds from
	// the history's start.
	FirstAckS float64 `json:"first_ack_s"`
	LastAckS  float64 `json:"last_ack_s"`
}

// windowAt names the fault window in force at t (seconds): the latest
// started of the windows holding t, else BeforeAnyFault before the first
// start, else "after" the window that ended last before t.
func windowAt(faults []FaultWindow, t float64) string {
	in, ended := -1, -1
	first := -1
	for i, f := range faults {
		if first < 0 || f.StartS < faults[first].StartS {
			first = i
		}
		if t >= f.StartS && t <= f.EndS && (in < 0 || f.StartS >= faults[in].StartS) {
			in = i
		}
		if f.EndS < t && (ended < 0 || f.EndS >= faults[ended].EndS) {
			ended = i
		}
	}
	switch {
	case in >= 0:
		return faults[in].Name
	case first < 0 || t < faults[first].StartS:
		return BeforeAnyFault
	}
	return "after " + faults[ended].Name
}

// place is where a lost message lies: its window (see LossGroup) and
// its part of the history.
type place struct{ window, part string }

// attribute fills r.LossAttribution and returns each lost message's
// place. acked is every acknowledged message.
func attribute(r *Result, acked []*msg, lost map[*msg]bool) map[*msg]place {
	sort.Slice(acked, func(i, j int) bool {
		if !acked[i].okAt.Equal(acked[j].okAt) {
			return acked[i].okAt.Before(acked[j].okAt)
		}
		return acked[i].id < acked[j].id
	})
	places := map[*msg]place{}
	if len(lost) == 0 {
		r.LossAttribution.Groups = []LossGroup{}
		return places
	}
	head := 0
	for head < len(acked) && lost[acked[head]] {
		head++
	}
	tail := len(acked)
	for tail > head && lost[acked[tail-1]] {
		tail--
	}
	sec := func(t time.Time) float64 { return t.Sub(r.Start).Seconds() }
	a := &r.LossAttribution
	a.Groups = []LossGroup{}
	group := map[[2]string]int{}
	var oldest *msg
	for i, m := range acked {
		if !lost[m] {
			continue
		}
		if oldest == nil {
			oldest = m
		}
		part := PartMiddle
		switch {
		case i < head:
			part = PartPrefix
		case i >= tail:
			part = PartPostfix
		}
		t := sec(m.okAt)
		k := [2]string{windowAt(r.Faults, t), m.ackNode}
		places[m] = place{window: k[0], part: part}
		gi, ok := group[k]
		if !ok {
			gi = len(a.Groups)
			group[k] = gi
			a.Groups = append(a.Groups, LossGroup{Window: k[0], Node: k[1], FirstAckS: t})
		}
		g := &a.Groups[gi]
		g.Lost++
		g.LastAckS = t
		switch part {
		case PartPrefix:
			g.Prefix++
			a.Prefix++
		case PartPostfix:
			g.Postfix++
			a.Postfix++
		default:
			g.Middle++
			a.Middle++
		}
	}
	// The observed RPO, from the first fault not over when the oldest lost
	// message was acknowledged.
	t := sec(oldest.okAt)
	var next *FaultWindow
	for i := range r.Faults {
		f := &r.Faults[i]
		if f.EndS >= t && (next == nil || f.StartS < next.StartS) {
			next = f
		}
	}
	if next != nil {
		d := max(0, next.StartS-t)
		a.RPOS = &d
	}
	return places
}
