package checker

import (
	"time"

	"github.com/lossbench/lossbench/chaos/history"
)

// orderChecker tracks, per (consumer, producer, destination), the highest
// sequence delivered and when that message was first invoked; see the
// package doc for the definition of a violation.
type orderChecker struct {
	streams map[streamKey]*stream
}

type streamKey struct{ consumer, producer, dest string }

type stream struct {
	maxSeq    uint64
	maxInvoke time.Time // first invoke of the message with maxSeq
}

func newOrderChecker() *orderChecker { return &orderChecker{streams: map[streamKey]*stream{}} }

// recv looks at one delivery of m (before m.deliveries counts it).
func (o *orderChecker) recv(r *Result, e history.Event, m *msg) {
	if m.producer == "" || m.seq == 0 || !m.invoked {
		return
	}
	k := streamKey{e.Process, m.producer, e.Dest}
	s := o.streams[k]
	if s == nil {
		s = &stream{}
		o.streams[k] = s
	}
	if m.seq < s.maxSeq && m.deliveries == 0 && !e.Redelivered && m.acked && m.okAt.Before(s.maxInvoke) {
		r.OrderViolations++
		if r.OrderViolationsByProducer == nil {
			r.OrderViolationsByProducer = map[string]int{}
		}
		r.OrderViolationsByProducer[m.producer]++
		if d := s.maxSeq - m.seq; d > r.MaxReorder {
			r.MaxReorder = d
		}
	}
	if m.seq > s.maxSeq {
		s.maxSeq, s.maxInvoke = m.seq, m.firstInvoke
	}
}
