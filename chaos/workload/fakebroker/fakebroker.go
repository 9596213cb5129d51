// Package fakebroker is a small in-memory STOMP 1.2 broker for tests of
// the workload and the drivers: queues, receipts, transactions, the three
// ack modes, prefetch, redelivery of unacknowledged messages when a
// consumer's connection drops, and dedup-id. It keeps nothing on disk, so a
// crash loses everything: that is what a memory store does.
package fakebroker

import (
	"errors"
	"net"
	"strconv"
	"sync"

	"github.com/go-stomp/stomp/v3/frame"
)

// DefaultPrefetch is the credit of a subscription without a prefetch
// header.
const DefaultPrefetch = 1000

// Broker serves STOMP on listeners given to Serve.
type Broker struct {
	// StallAfter, when > 0, makes the broker's first subscription stall
	// as a consumer whose ACKs stop reaching the broker does: ACKs after
	// its first StallAfter messages are ignored, so its prefetch window
	// fills and stays full while its connection is open; the messages it
	// holds go back to the queue when that connection closes. Set it
	// before Serve.
	StallAfter int

	mu      sync.Mutex
	queues  map[string]*queue
	seen    map[string]bool // dedup-ids
	conns   map[*conn]bool
	lns     []net.Listener
	nextID  uint64
	closed  bool
	stalled bool // the StallAfter subscription was made
}

type message struct {
	id  string // message-id
	f   *frame.Frame
	red bool
}

type queue struct {
	pending []*message
	subs    []*sub
	next    int // round robin
}

type sub struct {
	c        *conn
	id, dest string
	ack      string
	credit   int
	unacked  []*message
	ackIDs   map[string]*message // ack header value -> message
	// stallAt, when > 0, is the number of acks after which this
	// subscription's acks are ignored (Broker.StallAfter).
	stallAt, acks int
}

type conn struct {
	nc   net.Conn
	out  chan *frame.Frame
	subs map[string]*sub
	txs  map[string][]*frame.Frame
	done chan struct{}
}

// New returns an empty broker.
func New() *Broker {
	return &Broker{queues: map[string]*queue{}, seen: map[string]bool{}, conns: map[*conn]bool{}}
}

// Serve accepts connections on ln until ln is closed.
func (b *Broker) Serve(ln net.Listener) error {
	b.mu.Lock()
	b.lns = append(b.lns, ln)
	b.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		go b.serveConn(nc)
	}
}

// Close closes every listener and connection.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, ln := range b.lns {
		ln.Close()
	}
	for c := range b.conns {
		c.nc.Close()
	}
}

// Inflight is the number of messages delivered on dest and not yet
// acknowledged.
func (b *Broker) Inflight(dest string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	if q := b.queues[dest]; q != nil {
		for _, s := range q.subs {
			n += len(s.unacked)
		}
	}
	return n
}

// Queues lists the destinations the broker has seen.
func (b *Broker) Queues() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.queues))
	for d := range b.queues {
		out = append(out, d)
	}
	return out
}

// Depth is the number of messages queued on dest and not yet delivered.
func (b *Broker) Depth(dest string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.queues[dest]; q != nil {
		return len(q.pending)
	}
	return 0
}

var errProtocol = errors.New("fakebroker: protocol error")

func (b *Broker) serveConn(nc net.Conn) {
	c := &conn{nc: nc, out: make(chan *frame.Frame, 1<<14), subs: map[string]*sub{},
		txs: map[string][]*frame.Frame{}, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		nc.Close()
		return
	}
	b.conns[c] = true
	b.mu.Unlock()
	go c.writeLoop()
	defer func() {
		nc.Close()
		close(c.done)
		b.drop(c)
	}()
	r := frame.NewReader(nc)
	for {
		f, err := r.Read()
		if err != nil {
			return
		}
		if f == nil {
			continue // heart-beat
		}
		if err := b.handle(c, f); err != nil {
			e := frame.New(frame.ERROR, frame.Message, err.Error())
			if rc, ok := f.Header.Contains(frame.Receipt); ok {
				e.Header.Set(frame.ReceiptId, rc)
			}
			c.send(e)
			return
		}
	}
}

func (c *conn) writeLoop() {
	w := frame.NewWriter(c.nc)
	for {
		select {
		case f := <-c.out:
			if err := w.Write(f); err != nil {
				c.nc.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// send queues f for the connection's writer; a connection too slow to
// take it is dropped, like a broker drops a stuck client.
func (c *conn) send(f *frame.Frame) {
	select {
	case c.out <- f:
	case <-c.done:
	default:
		c.nc.Close()
	}
}

func (c *conn) receipt(f *frame.Frame) {
	if rc, ok := f.Header.Contains(frame.Receipt); ok {
		c.send(frame.New(frame.RECEIPT, frame.ReceiptId, rc))
	}
}

func (b *Broker) handle(c *conn, f *frame.Frame) error {
	switch f.Command {
	case frame.CONNECT, frame.STOMP:
		c.send(frame.New(frame.CONNECTED, frame.Version, "1.2", frame.HeartBeat, "0,0", frame.Server, "fakebroker"))
		return nil
	case frame.DISCONNECT:
		c.receipt(f)
		return nil
	case frame.SEND:
		if tx := f.Header.Get(frame.Transaction); tx != "" {
			if _, ok := c.txs[tx]; !ok {
				return errProtocol
			}
			f = f.Clone()
			f.Header.Del(frame.Transaction)
			c.txs[tx] = append(c.txs[tx], f)
			return nil
		}
		b.enqueue(f.Clone())
		c.receipt(f)
		return nil
	case frame.BEGIN:
		c.txs[f.Header.Get(frame.Transaction)] = nil
		c.receipt(f)
		return nil
	case frame.COMMIT:
		tx := f.Header.Get(frame.Transaction)
		fs, ok := c.txs[tx]
		if !ok {
			return errProtocol
		}
		delete(c.txs, tx)
		for _, m := range fs {
			b.enqueue(m)
		}
		c.receipt(f)
		return nil
	case frame.ABORT:
		delete(c.txs, f.Header.Get(frame.Transaction))
		c.receipt(f)
		return nil
	case frame.SUBSCRIBE:
		b.subscribe(c, f)
		c.receipt(f)
		return nil
	case frame.UNSUBSCRIBE:
		b.mu.Lock()
		if s := c.subs[f.Header.Get(frame.Id)]; s != nil {
			b.unsubscribe(s)
		}
		b.mu.Unlock()
		c.receipt(f)
		return nil
	case frame.ACK, frame.NACK:
		b.ack(c, f)
		c.receipt(f)
		return nil
	}
	return errProtocol
}

func (b *Broker) enqueue(f *frame.Frame) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id := f.Header.Get("dedup-id"); id != "" {
		if b.seen[id] {
			return
		}
		b.seen[id] = true
	}
	dest := f.Header.Get(frame.Destination)
	q := b.queue(dest)
	b.nextID++
	f.Command = frame.MESSAGE
	f.Header.Del(frame.Receipt)
	q.pending = append(q.pending, &message{id: strconv.FormatUint(b.nextID, 10), f: f})
	b.dispatch(q)
}

func (b *Broker) queue(dest string) *queue {
	q := b.queues[dest]
	if q == nil {
		q = &queue{}
		b.queues[dest] = q
	}
	return q
}

func (b *Broker) subscribe(c *conn, f *frame.Frame) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &sub{c: c, id: f.Header.Get(frame.Id), dest: f.Header.Get(frame.Destination),
		ack: f.Header.Get(frame.Ack), credit: DefaultPrefetch, ackIDs: map[string]*message{}}
	if s.ack == "" {
		s.ack = frame.AckAuto
	}
	for _, h := range []string{"activemq.prefetchSize", "prefetch-count"} {
		if n, err := strconv.Atoi(f.Header.Get(h)); err == nil && n > 0 {
			s.credit = n
		}
	}
	if b.StallAfter > 0 && !b.stalled {
		b.stalled, s.stallAt = true, b.StallAfter
	}
	c.subs[s.id] = s
	q := b.queue(s.dest)
	q.subs = append(q.subs, s)
	b.dispatch(q)
}

// unsubscribe requeues s's unacknowledged messages; b.mu is held.
func (b *Broker) unsubscribe(s *sub) {
	delete(s.c.subs, s.id)
	q := b.queue(s.dest)
	for i, x := range q.subs {
		if x == s {
			q.subs = append(q.subs[:i], q.subs[i+1:]...)
			break
		}
	}
	for _, m := range s.unacked {
		m.red = true
	}
	q.pending = append(append([]*message(nil), s.unacked...), q.pending...)
	s.unacked = nil
	b.dispatch(q)
}

func (b *Broker) drop(c *conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.conns, c)
	for _, s := range c.subs {
		b.unsubscribe(s)
	}
}

func (b *Broker) ack(c *conn, f *frame.Frame) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := f.Header.Get(frame.Id)
	if id == "" {
		id = f.Header.Get(frame.MessageId)
	}
	for _, s := range c.subs {
		m := s.ackIDs[id]
		if m == nil {
			continue
		}
		if s.stallAt > 0 {
			if s.acks >= s.stallAt {
				return
			}
			s.acks++
		}
		// client mode acks every message up to m; client-individual only m.
		n := 0
		for i, u := range s.unacked {
			if u == m {
				n = i + 1
				break
			}
		}
		if s.ack == frame.AckClientIndividual {
			for i, u := range s.unacked {
				if u == m {
					s.unacked = append(s.unacked[:i], s.unacked[i+1:]...)
					break
				}
			}
			delete(s.ackIDs, id)
		} else {
			for _, u := range s.unacked[:n] {
				delete(s.ackIDs, u.id)
			}
			s.unacked = s.unacked[n:]
		}
		if f.Command == frame.NACK {
			m.red = true
			q := b.queue(s.dest)
			q.pending = append([]*message{m}, q.pending...)
		}
		b.dispatch(b.queue(s.dest))
		return
	}
}

// dispatch hands pending messages to subscriptions with credit, round
// robin; b.mu is held.
func (b *Broker) dispatch(q *queue) {
	for len(q.pending) > 0 {
		var s *sub
		for i := 0; i < len(q.subs); i++ {
			x := q.subs[(q.next+i)%len(q.subs)]
			if x.ack == frame.AckAuto || len(x.unacked) < x.credit {
				s = x
				q.next = (q.next + i + 1) % len(q.subs)
				break
			}
		}
		if s == nil {
			return
		}
		m := q.pending[0]
		q.pending = q.pending[1:]
		f := m.f.Clone()
		f.Header.Set(frame.Subscription, s.id)
		f.Header.Set(frame.MessageId, m.id)
		if m.red {
			f.Header.Set("redelivered", "true")
		}
		if s.ack != frame.AckAuto {
			f.Header.Set(frame.Ack, m.id)
			s.unacked = append(s.unacked, m)
			s.ackIDs[m.id] = m
		}
		s.c.send(f)
	}
}
