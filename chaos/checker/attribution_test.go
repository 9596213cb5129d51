package checker_test

import (
	"reflect"
	"testing"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/history"
)

// TestLossAttribution runs the checker on a history that loses messages
// acknowledged before the fault (a prefix), inside its window (a hole in
// the middle) and after it on another node (a postfix), and checks each is
// attributed to its window, node and part, with the observed RPO.
func TestLossAttribution(t *testing.T) {
	var ev []history.Event
	for seq := uint64(1); seq <= 10; seq++ {
		ms := int(seq-1) * 100
		s := send(ms, "p1", seq)
		if seq >= 9 {
			s[1].Node = "b1" // acknowledged by the node that took over
		}
		ev = append(ev, s...)
	}
	for _, seq := range []uint64{3, 4, 5, 6, 8} {
		ev = append(ev, recv(1200+int(seq), "c0", "p1", seq))
	}
	ev = append(ev, fault(history.FaultStart, 350, "kill a1"), fault(history.FaultEnd, 650, "kill a1"))
	r := checker.Check(ev, checker.Options{})
	if r.Lost != 5 {
		t.Fatalf("lost %d, want 5 (1, 2, 7, 9, 10)", r.Lost)
	}
	a := r.LossAttribution
	if a.Prefix != 2 || a.Middle != 1 || a.Postfix != 2 {
		t.Errorf("prefix %d middle %d postfix %d, want 2 1 2", a.Prefix, a.Middle, a.Postfix)
	}
	want := []checker.LossGroup{
		{Window: checker.BeforeAnyFault, Node: "a1", Lost: 2, Prefix: 2, FirstAckS: 0.005, LastAckS: 0.105},
		{Window: "kill a1", Node: "a1", Lost: 1, Middle: 1, FirstAckS: 0.605, LastAckS: 0.605},
		{Window: "after kill a1", Node: "b1", Lost: 2, Postfix: 2, FirstAckS: 0.805, LastAckS: 0.905},
	}
	if len(a.Groups) != len(want) {
		t.Fatalf("groups %+v, want %+v", a.Groups, want)
	}
	for i := range want {
		g := a.Groups[i]
		g.FirstAckS, g.LastAckS = round3(g.FirstAckS), round3(g.LastAckS)
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("group %d: %+v, want %+v", i, g, want[i])
		}
	}
	if a.RPOS == nil || round3(*a.RPOS) != 0.345 {
		t.Errorf("rpo_s %v, want 0.345 (seq 1 acknowledged at 0.005 s, the kill at 0.350 s)", deref(a.RPOS))
	}
	parts := map[uint64]string{}
	for _, l := range r.LostSample {
		parts[l.Seq] = l.Part + "/" + l.Window + "/" + l.AckNode
	}
	wantParts := map[uint64]string{1: "prefix/before any fault/a1", 2: "prefix/before any fault/a1",
		7: "middle/kill a1/a1", 9: "postfix/after kill a1/b1", 10: "postfix/after kill a1/b1"}
	if !reflect.DeepEqual(parts, wantParts) {
		t.Errorf("lost sample parts %v, want %v", parts, wantParts)
	}
}

// TestLossAttributionAllLostAndNone: a history lost from end to end is a
// prefix; one that loses nothing has no groups and no RPO.
func TestLossAttributionAllLostAndNone(t *testing.T) {
	ev := append(send(0, "p1", 1), send(100, "p1", 2)...)
	ev = append(ev, fault(history.FaultStart, 50, "disk-lost d1"))
	r := checker.Check(ev, checker.Options{})
	if a := r.LossAttribution; a.Prefix != 2 || a.Middle+a.Postfix != 0 || a.RPOS == nil || round3(*a.RPOS) != 0.045 {
		t.Errorf("all lost: %+v rpo %v, want prefix 2, rpo 0.045", a, deref(a.RPOS))
	}
	ev = append(ev, recv(200, "c0", "p1", 1), recv(201, "c0", "p1", 2))
	r = checker.Check(ev, checker.Options{})
	if a := r.LossAttribution; len(a.Groups) != 0 || a.RPOS != nil || a.Prefix+a.Middle+a.Postfix != 0 {
		t.Errorf("nothing lost: %+v", a)
	}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
