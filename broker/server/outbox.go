package server

import (
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/stomp"
)

// outItem is one frame for the writer: a ready frame, a delivery the
// writer turns into a MESSAGE (loading a paged body if need be), or a
// RECEIPT for receipt, which the writer encodes from one reused frame:
// a receipt per SEND would otherwise allocate a frame and its headers.
type outItem struct {
	f       *stomp.Frame
	d       *delivery
	receipt string
	close   bool // close the connection once this frame is flushed
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

// writeLoop is the connection's writer goroutine. It writes every queued
// frame into the buffered writer and flushes only when the outbox is
// empty, so a burst of deliveries and receipts costs one syscall. It sends
// heart-beats when nothing else was written for hbSend.
func (c *conn) writeLoop(hbSend time.Duration) {
	defer close(c.writerDone)
	defer c.nc.Close()
	w := stomp.NewWriterSize(c.nc, 16<<10)
	var hb <-chan time.Time
	var timer *time.Timer
	if hbSend > 0 {
		timer = time.NewTimer(hbSend)
		hb = timer.C
	}
	var items, spare []outItem
	var autos []*delivery
	msg := &stomp.Frame{Command: stomp.MESSAGE}
	rcpt := &stomp.Frame{Command: stomp.RECEIPT, Headers: []stomp.Header{{Key: "receipt-id"}}}
	var deadline time.Time
	flush := func() bool {
		if w.Buffered() == 0 {
			return true
		}
		if now := time.Now(); deadline.Sub(now) < c.b.opts.WriteTimeout*3/4 {
			deadline = now.Add(c.b.opts.WriteTimeout)
			c.nc.SetWriteDeadline(deadline)
		}
		return w.Flush() == nil
	}
	for {
		select {
		case <-c.out.kick:
		case <-hb:
			w.WriteHeartBeat()
			if !flush() {
				return
			}
			timer.Reset(hbSend)
			continue
		}
		for {
			var closed bool
			items, closed = c.out.take(spare)
			if len(items) == 0 {
				spare = items
				if closed {
					flush()
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
				f := it.f
				if f == nil {
					rcpt.Headers[0].Value = it.receipt
					f = rcpt
				}
				if err := w.WriteFrame(f); err != nil {
					c.b.logf("conn %s: write %s: %v", c.remote, f.Command, err)
				}
				if it.close {
					flush()
					return
				}
			}
			spare = items
		}
		if !flush() {
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
