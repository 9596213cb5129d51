package server

import (
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/lossbench/lossbench/broker/store"
)

// message is one message held by a queue. Every field but redelivered is
// immutable once the message is enqueued; redelivered and redeliveries are
// guarded by Broker.mu.
type message struct {
	seq        uint64 // store Seq; 0 when not persistent
	ord        uint64 // arrival order in this broker, for FIFO after redelivery
	id         string // STOMP message-id
	dest       string // destination queue name
	queue      *queue
	headers    []store.Header
	body       []byte // nil when paged out (see paged) or empty
	size       int
	paged      bool // body lives only in the store
	persistent bool
	dedupID    string

	redelivered  bool
	redeliveries int // times handed back after it was written to a client
}

// messageID derives the STOMP message-id from the store Seq, so it is the
// same after a restart.
func messageID(seq uint64) string { return "ID:refbroker-" + strconv.FormatUint(seq, 10) }

// setSeqs gives the persistent ones of ms, in order, the Seqs the store
// assigned to stored, and their message-ids.
func setSeqs(ms []*message, stored []*store.Message) {
	j := 0
	for _, m := range ms {
		if m.persistent {
			m.seq = stored[j].Seq
			m.id = messageID(m.seq)
			j++
		}
	}
}

type ackMode uint8

const (
	ackAuto ackMode = iota
	ackClient
	ackIndividual
)

func parseAckMode(s string) (ackMode, bool) {
	switch s {
	case "", "auto":
		return ackAuto, true
	case "client":
		return ackClient, true
	case "client-individual":
		return ackIndividual, true
	}
	return 0, false
}

type deliveryState uint8

const (
	stInflight deliveryState = iota // sent or queued to the client, not acked
	stTxAcked                       // acked or nacked inside an open transaction
	stDone                          // acked, or handed back to the queue
)

// delivery is one message handed to one subscription. All fields but state
// and sent are immutable, so the connection's writer reads them without a lock;
// state is guarded by Broker.mu.
type delivery struct {
	msg         *message
	sub         *subscription
	tag         uint64 // the MESSAGE's ack header, unique per connection
	redelivered bool
	state       deliveryState
	sent        atomic.Bool // written to the client (set by its writer)
}

// subscription is a consumer of one queue on one connection.
type subscription struct {
	id       string
	c        *conn
	q        *queue
	mode     ackMode
	prefetch int
	unacked  []*delivery // in tag order; entries in stDone are trimmed lazily
	inflight int         // deliveries not in stDone
}

// queue is a FIFO of messages with round-robin dispatch over its
// subscriptions. Guarded by Broker.mu.
type queue struct {
	name      string
	ready     []*message // FIFO from head
	head      int
	redeliver []*message // handed back, in ord order; dispatched first
	subs      []*subscription
	rr        int
	inflight  int
}

func (q *queue) depth() int { return len(q.ready) - q.head + len(q.redeliver) }

func (q *queue) push(m *message) { q.ready = append(q.ready, m) }

func (q *queue) pop() *message {
	if len(q.redeliver) > 0 {
		m := q.redeliver[0]
		q.redeliver[0] = nil
		q.redeliver = q.redeliver[1:]
		if len(q.redeliver) == 0 {
			q.redeliver = nil
		}
		return m
	}
	m := q.ready[q.head]
	q.ready[q.head] = nil
	q.head++
	if q.head == len(q.ready) {
		q.ready, q.head = q.ready[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.ready) {
		n := copy(q.ready, q.ready[q.head:])
		clear(q.ready[n:])
		q.ready, q.head = q.ready[:n], 0
	}
	return m
}

// giveBack returns m to the queue ahead of never-delivered messages, in
// arrival order among the returned.
func (q *queue) giveBack(m *message) {
	m.redelivered = true
	i := sort.Search(len(q.redeliver), func(i int) bool { return q.redeliver[i].ord > m.ord })
	q.redeliver = append(q.redeliver, nil)
	copy(q.redeliver[i+1:], q.redeliver[i:])
	q.redeliver[i] = m
}

// nextSub picks the next subscription with prefetch room, round robin.
func (q *queue) nextSub() *subscription {
	n := len(q.subs)
	for i := 0; i < n; i++ {
		s := q.subs[(q.rr+i)%n]
		if s.inflight < s.prefetch {
			q.rr = (q.rr + i + 1) % n
			return s
		}
	}
	return nil
}

func (q *queue) removeSub(s *subscription) {
	for i, x := range q.subs {
		if x == s {
			q.subs = append(q.subs[:i], q.subs[i+1:]...)
			break
		}
	}
	if q.rr >= len(q.subs) {
		q.rr = 0
	}
}

// trim drops settled deliveries from the front of s.unacked and compacts
// the slice when it is mostly settled.
func (s *subscription) trim() {
	i := 0
	for i < len(s.unacked) && s.unacked[i].state == stDone {
		s.unacked[i] = nil
		i++
	}
	s.unacked = s.unacked[i:]
	if len(s.unacked) > 64 && len(s.unacked) > 2*s.inflight {
		out := make([]*delivery, 0, s.inflight+16)
		for _, d := range s.unacked {
			if d.state != stDone {
				out = append(out, d)
			}
		}
		s.unacked = out
	}
}
