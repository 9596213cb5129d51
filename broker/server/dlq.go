package server

import (
	"strings"
	"sync"

	"github.com/lossbench/lossbench/broker/store"
)

// DLQPrefix starts the name of a dead-letter queue: a message handed back
// more than MaxRedeliveries times from /queue/<name> moves to
// /queue/DLQ.<name>, as ActiveMQ's individual dead-letter strategy does.
// Messages of a dead-letter queue are never moved again.
const DLQPrefix = "/queue/DLQ."

// HeaderOriginalDestination names, on a dead-lettered message, the queue
// it came from.
const HeaderOriginalDestination = "original-destination"

func dlqName(queue string) string { return DLQPrefix + strings.TrimPrefix(queue, "/queue/") }

// deadLetters moves messages past their redelivery limit to their
// dead-letter queue off the hot path. A persistent message's copy in the
// DLQ and the ack of the original are one store batch, so a crash keeps
// the message in one queue or the other, never in neither: before the
// batch is durable the original stays stored (it comes back in its queue
// on restart, its redelivery count reset) and in no queue in memory.
type deadLetters struct {
	b    *Broker
	mu   sync.Mutex
	msgs []*message
	kick chan struct{}
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func newDeadLetters(b *Broker) *deadLetters {
	d := &deadLetters{b: b, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

// deadLocked reports whether m, just handed back, is past the redelivery
// limit, and if so queues it for its DLQ; caller holds b.mu.
func (b *Broker) deadLocked(m *message) bool {
	if b.opts.MaxRedeliveries < 0 || m.redeliveries <= b.opts.MaxRedeliveries || strings.HasPrefix(m.dest, DLQPrefix) {
		return false
	}
	d := b.dead
	d.mu.Lock()
	d.msgs = append(d.msgs, m)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return true
}

func (d *deadLetters) run() {
	defer close(d.done)
	for {
		stop := false
		select {
		case <-d.kick:
		case <-d.quit:
			stop = true
		}
		d.mu.Lock()
		msgs := d.msgs
		d.msgs = nil
		d.mu.Unlock()
		if len(msgs) > 0 {
			d.b.moveDead(msgs)
		}
		if stop {
			return
		}
	}
}

// stop moves what is pending and ends the mover.
func (d *deadLetters) stop() {
	d.once.Do(func() { close(d.quit) })
	<-d.done
}

// moveDead stores copies of msgs in their DLQs and acks the originals in
// one batch, then enqueues the copies. On a store error the broker fails
// stop and the originals stay stored.
func (b *Broker) moveDead(msgs []*message) {
	if b.isFailed() {
		return
	}
	var batch store.Batch
	copies := make([]*message, len(msgs))
	for i, m := range msgs {
		body := m.body
		if m.paged {
			var err error
			if body, err = b.loadBody(m.seq); err != nil {
				b.fail(err)
				return
			}
		}
		hs := make([]store.Header, 0, len(m.headers)+1)
		hs = append(hs, store.Header{Key: HeaderOriginalDestination, Value: m.dest})
		for _, h := range m.headers {
			if h.Key != HeaderOriginalDestination {
				hs = append(hs, h)
			}
		}
		copies[i] = &message{dest: dlqName(m.dest), headers: hs, body: body, size: len(body), persistent: m.persistent, dedupID: m.dedupID}
		if m.persistent {
			batch.Adds = append(batch.Adds, &store.Message{Queue: copies[i].dest, Headers: hs, Body: body})
			batch.Acks = append(batch.Acks, m.seq)
		}
	}
	if len(batch.Adds) > 0 {
		if err := b.st.Write(b.ctx, &batch); err != nil {
			b.fail(err)
			return
		}
		b.m.storeAcks.Add(uint64(len(batch.Acks)))
		setSeqs(copies, batch.Adds)
	}
	b.mu.Lock()
	for _, m := range msgs {
		b.forget(m)
		b.logf("message %s moved to %s: handed back %d times", m.id, dlqName(m.dest), m.redeliveries)
	}
	b.chargeLocked(copies)
	b.enqueueLocked(copies)
	b.mu.Unlock()
	b.m.deadLettered.Add(uint64(len(msgs)))
}
