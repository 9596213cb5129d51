package server

import (
	"fmt"
	"time"
)

// Memory accounting and producer flow control.
//
// Every message the broker holds (queued, in flight, admitted for a store
// write, or sent in a transaction not yet committed) is charged its metaBytes, and its body unless the body
// was paged out to the store. Options.MaxMemory bounds the total: a SEND
// batch is admitted before its store write, and at the bound the
// connection's reader waits (it reads nothing more, so TCP pushes back on
// the producer) until consumers free memory, for at most
// Options.MemoryWait; then the SENDs get an ERROR and are neither stored
// nor receipted. ActiveMQ's memory limit does the same
// (sendFailIfNoSpaceAfterTimeout).

// messageOverhead is what a held message costs besides its body and its
// header strings: the message struct, its id, its queue slot, a delivery
// while in flight, a dedup entry and the store's index entry, with the
// allocator's rounding (TestMessageOverhead measures it).
const messageOverhead = 512

// headerOverhead is a store.Header's own size: two string headers.
const headerOverhead = 32

// metaBytes is what m costs in memory without its body.
func (m *message) metaBytes() int64 {
	n := messageOverhead + len(m.dest)
	for _, h := range m.headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// pageable reports whether m's body may live in the store alone.
func (b *Broker) pageable(m *message) bool {
	return m.persistent && b.loader != nil && m.size > 0
}

// need is the least m takes to hold: its metadata, and its body unless it
// can be paged out.
func (b *Broker) need(m *message) int64 {
	n := m.metaBytes()
	if !b.pageable(m) {
		n += int64(m.size)
	}
	return n
}

// errMemoryFull answers SENDs that waited MemoryWait for memory in vain.
func (b *Broker) errMemoryFull(need int64, waited time.Duration) error {
	return &clientError{message: "memory limit reached",
		detail: fmt.Sprintf("the broker holds %d of its max-memory %d bytes and %d more were needed; waited %v for consumers to free memory; the messages were not stored, resend them",
			b.memHeld(), b.opts.MaxMemory, need, waited)}
}

func (b *Broker) memHeld() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.memBytes
}

// admit charges need bytes for messages about to be stored and enqueued,
// waiting for room while the broker is at MaxMemory (producer flow
// control). It fails with a clientError after MemoryWait, at once when
// need alone exceeds MaxMemory, and with errStoreFailed when the broker
// fails or stops meanwhile.
func (b *Broker) admit(need int64) error {
	max := b.opts.MaxMemory
	if max > 0 && need > max {
		return &clientError{message: "memory limit reached",
			detail: fmt.Sprintf("%d bytes of messages in one batch exceed max-memory %d", need, max)}
	}
	var timer *time.Timer
	start := time.Now()
	b.mu.Lock()
	for max > 0 && b.memBytes+need > max {
		if b.closing.Load() {
			b.mu.Unlock()
			return errStoreFailed // shutting down: not stored, not receipted
		}
		if timer == nil {
			if b.opts.MemoryWait <= 0 {
				b.mu.Unlock()
				b.m.memoryRefused.Add(1)
				return b.errMemoryFull(need, 0)
			}
			timer = time.NewTimer(b.opts.MemoryWait)
			defer timer.Stop()
			b.m.memoryWaits.Add(1)
		}
		if b.memFreed == nil {
			b.memFreed = make(chan struct{})
		}
		freed := b.memFreed
		b.memWaiting++
		b.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-timer.C:
			b.m.memoryRefused.Add(1)
			err = b.errMemoryFull(need, time.Since(start).Round(time.Millisecond))
		case <-b.failed:
			err = errStoreFailed
		case <-b.ctx.Done():
			err = errStoreFailed
		}
		b.mu.Lock()
		b.memWaiting--
		if err != nil {
			b.mu.Unlock()
			return err
		}
	}
	b.memBytes += need
	b.mu.Unlock()
	return nil
}

// chargeLocked charges msgs, which enter without admit and without
// waiting: recovered ones (the broker holds what its store has, however
// much) and dead-lettered copies (their originals were just forgotten).
// Caller holds b.mu.
func (b *Broker) chargeLocked(msgs []*message) {
	for _, m := range msgs {
		b.memBytes += b.need(m)
	}
}

// release gives back n admitted bytes (a duplicate that is not stored, a
// failed write); caller holds b.mu.
func (b *Broker) releaseLocked(n int64) {
	b.memBytes -= n
	if n > 0 {
		b.wakeMemLocked()
	}
}

// releaseTx gives back what a transaction's SENDs held, at its COMMIT,
// ABORT or the end of its connection.
func (b *Broker) releaseTx(t *tx) {
	b.mu.Lock()
	b.releaseLocked(t.held)
	b.mu.Unlock()
	t.held = 0
}

// wakeMemLocked wakes every SEND waiting in admit to look again; caller
// holds b.mu.
func (b *Broker) wakeMemLocked() {
	if b.memFreed != nil {
		close(b.memFreed)
		b.memFreed = nil
	}
}

// keepOrPage decides whether an admitted m keeps its body in memory: a
// pageable body stays only while the broker holds less than half of
// MaxMemory, leaving the other half to the metadata of paged messages and
// to non-persistent ones (admit charged their bodies already). Caller
// holds b.mu.
func (b *Broker) keepOrPage(m *message) {
	if m.paged {
		return
	}
	if b.pageable(m) {
		if b.opts.MaxMemory > 0 && b.memBytes+int64(m.size) > b.opts.MaxMemory/2 {
			m.body, m.paged = nil, true
			return
		}
		b.memBytes += int64(m.size)
	}
	b.memBody += int64(m.size)
}

// forget releases m's memory when it leaves the broker; caller holds b.mu.
func (b *Broker) forget(m *message) {
	n := m.metaBytes()
	if !m.paged {
		n += int64(m.size)
		b.memBody -= int64(m.size)
	}
	b.releaseLocked(n)
}
