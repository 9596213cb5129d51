package server

import (
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/stomp"
)

// outItem is one frame for the writer: a ready frame, or a delivery the
// writer turns into a MESSAGE (loading a paged body if need be).
type outItem struct {
	f     *stomp.Frame
	d     *delivery
	close bool // close the connection once this frame is flushed
}

// outbox is a connection's queue of outbound frames. Producers push from
// any goroutine; only the writer goroutine takes.
type outbox struct {
	mu     sync.Mutex
	items  []outItem
	sealed bool // a closing frame was pushed: accept nothing more
	closed bool // the connection is being torn down
	kick   chan struct{}
}

func (o *outbox) init() { o.kick = make(chan struct{}, 1) }

// push appends it unless the outbox is sealed; it reports whether it did.
func (o *outbox) push(it outItem) bool {
	o.mu.Lock()
	if o.sealed || o.closed {
		o.mu.Unlock()
		return false
	}
	o.items = append(o.items, it)
	if it.close {
		o.sealed = true
	}
	o.mu.Unlock()
	o.signal()
	return true
}

func (o *outbox) signal() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// idle reports whether nothing is queued and the outbox takes frames.
func (o *outbox) idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items) == 0 && !o.sealed && !o.closed
}

// take swaps the pending items into buf.
func (o *outbox) take(buf []outItem) ([]outItem, bool) {
	o.mu.Lock()
	items := o.items
	o.items = buf[:0]
	closed := o.closed
	o.mu.Unlock()
	return items, closed
}

// shutdown tells the writer to write what frames remain and close.
func (o *outbox) shutdown() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// connWriter is a connection's buffered writer. The writer goroutine
// writes through it; the reader goroutine may too, for its own RECEIPTs,
// when it finds the writer idle and nothing queued (writeReceipts): that
// spares a wake-up of the writer goroutine per RECEIPT. Every field is
// guarded by mu, held from the moment frames are taken from the outbox
// until they are flushed, so frames reach the socket in outbox order.
type connWriter struct {
	mu       sync.Mutex
	w        *stomp.Writer
	deadline time.Time
	done     bool // the writer goroutine has returned: write nothing more
}

// flushLocked flushes c.cw.w, extending the write deadline when it is
// running out; false means the connection is broken.
func (c *conn) flushLocked() bool {
	cw := &c.cw
	if cw.w.Buffered() == 0 {
		return true
	}
	if now := time.Now(); cw.deadline.Sub(now) < c.b.opts.WriteTimeout*3/4 {
		cw.deadline = now.Add(c.b.opts.WriteTimeout)
		c.nc.SetWriteDeadline(cw.deadline)
	}
	return cw.w.Flush() == nil
}

// writeReceipts writes RECEIPT frames for ids straight to the socket from
// the calling goroutine when the writer goroutine is idle and nothing is
// queued before them; otherwise it queues them for the writer. The caller
// has counted them already.
func (c *conn) writeReceipts(ids []string) {
	if c.cw.mu.TryLock() {
		if !c.cw.done && c.out.idle() {
			for _, id := range ids {
				c.cw.w.WriteFrame(receiptFrame(id))
			}
			ok := c.flushLocked()
			c.cw.mu.Unlock()
			if !ok {
				// Broken: the reader will see it too and tear the
				// connection down; the writer goroutine then returns.
				c.nc.Close()
			}
			return
		}
		c.cw.mu.Unlock()
	}
	for _, id := range ids {
		c.out.push(outItem{f: receiptFrame(id)})
	}
}

// writeLoop is the connection's writer goroutine. It writes every queued
// frame into the buffered writer and flushes only when the outbox is
// empty, so a burst of deliveries and receipts costs one syscall. It sends
// heart-beats when nothing else was written for hbSend.
func (c *conn) writeLoop(hbSend time.Duration) {
	defer close(c.writerDone)
	defer c.nc.Close()
	cw := &c.cw
	defer func() {
		cw.mu.Lock()
		cw.done = true
		cw.mu.Unlock()
	}()
	w := cw.w
	var hb <-chan time.Time
	var timer *time.Timer
	if hbSend > 0 {
		timer = time.NewTimer(hbSend)
		hb = timer.C
	}
	var items, spare []outItem
	var autos []*delivery
	msg := &stomp.Frame{Command: stomp.MESSAGE}
	for {
		select {
		case <-c.out.kick:
		case <-hb:
			cw.mu.Lock()
			w.WriteHeartBeat()
			ok := c.flushLocked()
			cw.mu.Unlock()
			if !ok {
				return
			}
			timer.Reset(hbSend)
			continue
		}
		cw.mu.Lock()
		for {
			var closed bool
			items, closed = c.out.take(spare)
			if len(items) == 0 {
				spare = items
				if closed {
					c.flushLocked()
					cw.mu.Unlock()
					return
				}
				break
			}
			for i := range items {
				it := items[i]
				items[i] = outItem{}
				if it.d != nil {
					if closed {
						continue // handed back to the queue already
					}
					if !c.writeMessage(w, msg, it.d) {
						continue
					}
					it.d.sent.Store(true)
					if it.d.sub.mode == ackAuto {
						autos = append(autos, it.d)
					}
					continue
				}
				if err := w.WriteFrame(it.f); err != nil {
					c.b.logf("conn %s: write %s: %v", c.remote, it.f.Command, err)
				}
				if it.close {
					c.flushLocked()
					cw.mu.Unlock()
					return
				}
			}
			spare = items
		}
		ok := c.flushLocked()
		cw.mu.Unlock()
		if !ok {
			return
		}
		if len(autos) > 0 {
			c.b.autoAcked(autos)
			clear(autos)
			autos = autos[:0]
		}
		if timer != nil {
			timer.Reset(hbSend)
		}
	}
}

// writeMessage encodes d as a MESSAGE frame into w; it reports false when
// the delivery was skipped.
func (c *conn) writeMessage(w *stomp.Writer, f *stomp.Frame, d *delivery) bool {
	m := d.msg
	body := m.body
	if m.paged {
		var err error
		body, err = c.b.loader.Load(c.b.ctx, m.seq)
		if err != nil {
			if c.b.stillInflight(d) {
				c.b.fail(err)
			}
			return false
		}
	}
	f.Headers = append(f.Headers[:0],
		stomp.Header{Key: "subscription", Value: d.sub.id},
		stomp.Header{Key: "message-id", Value: m.id},
		stomp.Header{Key: "destination", Value: m.queue.name},
		stomp.Header{Key: "ack", Value: formatTag(d.tag)},
	)
	if d.redelivered {
		f.Headers = append(f.Headers, stomp.Header{Key: "redelivered", Value: "true"})
	}
	for _, h := range m.headers {
		f.Headers = append(f.Headers, stomp.Header(h))
	}
	f.Body = body
	err := w.WriteFrame(f)
	f.Body = nil
	if err != nil {
		return false
	}
	c.b.m.messagesOut.Add(1)
	return true
}
