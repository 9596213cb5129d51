package storetest

import (
	"testing"

	"github.com/lossbench/lossbench/broker/store"
)

// applier returns s as a store.Applier, or skips the test.
func applier(t *testing.T, s store.Store) store.Applier {
	t.Helper()
	a, ok := s.(store.Applier)
	if !ok {
		t.Skip("store is no store.Applier")
	}
	return a
}

func seqMsg(seq uint64, i int) *store.Message {
	m := msg(i)
	m.Seq = seq
	return m
}

// testApplyKeepsSeqs: applied adds keep their seqs (gaps allowed), acks
// in a later batch of the same call apply, NextSeq rises to next, and a
// Write after it hands out seqs above it.
func testApplyKeepsSeqs(t *testing.T, h Harness) {
	s := open(t, h)
	a := applier(t, s)
	m5, m9, m10 := seqMsg(5, 5), seqMsg(9, 9), seqMsg(10, 10)
	bs := []*store.Batch{{Adds: []*store.Message{m5, m9}}, {Adds: []*store.Message{m10}, Acks: []uint64{9}}}
	if err := a.Apply(ctx, bs, 20); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := a.NextSeq(); got != 20 {
		t.Fatalf("NextSeq after Apply(next 20) = %d", got)
	}
	sameMessages(t, recoverAll(t, s), []*store.Message{seqMsg(5, 5), seqMsg(10, 10)})
	w := msg(1)
	add(t, s, w)
	if w.Seq < 20 {
		t.Fatalf("Write after Apply(next 20) gave seq %d", w.Seq)
	}
	if h.Durable {
		closeStore(t, s)
		s = open(t, h)
		sameMessages(t, recoverAll(t, s), []*store.Message{seqMsg(5, 5), seqMsg(10, 10), w})
		if n := applier(t, s).NextSeq(); n <= w.Seq {
			t.Fatalf("NextSeq after reopen = %d, seq %d was handed out", n, w.Seq)
		}
	}
}

// testApplyRejectsOldSeqs: a seq not above those handed out fails the
// batch without applying it.
func testApplyRejectsOldSeqs(t *testing.T, h Harness) {
	s := open(t, h)
	a := applier(t, s)
	if err := a.Apply(ctx, []*store.Batch{{Adds: []*store.Message{seqMsg(7, 7)}}}, 0); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, seq := range []uint64{7, 3} {
		if err := a.Apply(ctx, []*store.Batch{{Adds: []*store.Message{seqMsg(seq, 1)}}}, 0); err == nil {
			t.Fatalf("Apply of seq %d after seq 7 succeeded", seq)
		}
	}
	if err := a.Apply(ctx, []*store.Batch{{Adds: []*store.Message{seqMsg(9, 1), seqMsg(8, 2)}}}, 0); err == nil {
		t.Fatal("Apply of seqs 9, 8 in one batch succeeded")
	}
	sameMessages(t, recoverAll(t, s), []*store.Message{seqMsg(7, 7)})
}
