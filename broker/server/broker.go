// Package server is the refbroker's STOMP 1.2 front end: it accepts client
// connections, keeps queues in memory, and makes persistent messages and
// their acknowledgements durable through a store.Store before it says so.
//
// Each connection has a reader goroutine, which parses frames and performs
// them (a persistent SEND is written to the store by that goroutine, so
// Writes of different connections overlap and the store can group-commit
// them), and a writer goroutine that drains an outbox into a buffered
// writer and flushes only when the outbox is empty. Queue state is guarded
// by one mutex that is never held across store or network I/O.
//
// The broker fails stop: the first store error stops every further
// acknowledgement, sends an ERROR frame to every client, and closes Failed.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// ErrNotRecovered is returned by Serve before Recover succeeded.
var ErrNotRecovered = errors.New("server: store not recovered")

// Broker is a STOMP broker over one store.
type Broker struct {
	opts   Options
	st     store.Store
	loader store.Loader // nil when the store cannot page bodies back in
	ctx    context.Context
	cancel context.CancelFunc
	bootID string

	mu       sync.Mutex // guards the fields below and all queue state
	queues   map[string]*queue
	conns    map[*conn]struct{}
	ln       net.Listener
	ord      uint64
	npSeq    uint64
	memBytes int64 // messages held, overhead included (memory.go)
	memBody  int64 // of which bodies
	// memFreed is closed, and memWaiting SENDs wake, when memory is freed.
	memFreed   chan struct{}
	memWaiting int

	dedup *dedupWindow
	acker *acker
	dead  *deadLetters

	logins *loginThrottle
	wg     sync.WaitGroup // connection goroutines

	recovered atomic.Bool
	closing   atomic.Bool
	failOnce  sync.Once
	failed    chan struct{}
	failErr   error
	failMsg   string // the ERROR frames' message header once failed

	m metrics
}

// New returns a broker over st. Call Recover, then Serve.
func New(st store.Store, opts Options) *Broker {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		opts:   opts.withDefaults(),
		st:     st,
		ctx:    ctx,
		cancel: cancel,
		bootID: strconv.FormatInt(time.Now().UnixNano(), 36),
		queues: make(map[string]*queue),
		conns:  make(map[*conn]struct{}),
		failed: make(chan struct{}),
	}
	b.loader, _ = st.(store.Loader)
	b.dedup = newDedupWindow(b.opts.DedupWindow)
	b.acker = newAcker(b)
	b.dead = newDeadLetters(b)
	b.logins = newLoginThrottle(b.opts.MaxLoginFailures, b.opts.Logf)
	b.m.init()
	return b
}

func (b *Broker) logf(format string, args ...any) { b.opts.Logf(format, args...) }

// Recover replays the store's unacknowledged messages into the queues and
// rebuilds the dedup window from their headers.
func (b *Broker) Recover(ctx context.Context) error {
	n := 0
	err := b.st.Recover(ctx, func(sm *store.Message) error {
		if sm.Body == nil && sm.Size > 0 && b.loader == nil {
			return fmt.Errorf("server: store returned message %d without body and cannot load it", sm.Seq)
		}
		m := &message{
			seq:        sm.Seq,
			dest:       sm.Queue,
			id:         messageID(sm.Seq),
			headers:    sm.Headers,
			body:       sm.Body,
			size:       sm.Size,
			paged:      sm.Body == nil && sm.Size > 0,
			persistent: true,
		}
		for _, h := range sm.Headers {
			if h.Key == HeaderDedup {
				m.dedupID = h.Value
				b.dedup.remember(sm.Queue, h.Value, sm.Seq, sm.Body, sm.Size)
				break
			}
		}
		b.mu.Lock()
		b.ord++
		m.ord = b.ord
		b.chargeLocked([]*message{m})
		b.keepOrPage(m)
		q := b.queueLocked(sm.Queue)
		m.queue = q
		q.push(m)
		b.mu.Unlock()
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	b.recovered.Store(true)
	b.logf("recovered %d messages", n)
	return nil
}

func (b *Broker) queueLocked(name string) *queue {
	q := b.queues[name]
	if q == nil {
		q = &queue{name: name}
		b.queues[name] = q
	}
	return q
}

// admitQueueLocked reports whether a client may use queue name: it exists,
// or one more fits under MaxQueues once empty, unused queues are dropped.
// It creates the queue when it may. Caller holds b.mu.
func (b *Broker) admitQueueLocked(name string) bool {
	if _, ok := b.queues[name]; !ok && len(b.queues) >= b.opts.MaxQueues {
		for n, q := range b.queues {
			if q.depth() == 0 && q.inflight == 0 && len(q.subs) == 0 {
				delete(b.queues, n)
			}
		}
		if len(b.queues) >= b.opts.MaxQueues {
			return false
		}
	}
	b.queueLocked(name)
	return true
}

// Serve accepts connections on ln until Shutdown. It returns nil after
// Shutdown and the accept error otherwise.
func (b *Broker) Serve(ln net.Listener) error {
	if !b.recovered.Load() {
		return ErrNotRecovered
	}
	b.mu.Lock()
	if b.closing.Load() {
		b.mu.Unlock()
		ln.Close()
		return nil
	}
	b.ln = ln
	b.mu.Unlock()
	b.logf("listening on %s", ln.Addr())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if b.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				b.logf("accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		b.mu.Lock()
		if b.closing.Load() {
			b.mu.Unlock()
			nc.Close()
			continue
		}
		if max := b.opts.MaxConnections; max > 0 && len(b.conns) >= max {
			b.mu.Unlock()
			b.refuse(nc, max)
			continue
		}
		c := newConn(b, nc)
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		b.m.connectionsTotal.Add(1)
		go c.serve()
	}
}

// refuse turns away a connection past MaxConnections at once, with an
// ERROR frame, so that clients cannot take the descriptors the store
// needs. It writes inline: one refused descriptor at a time, and a fresh
// socket's buffer takes the frame without blocking.
func (b *Broker) refuse(nc net.Conn, max int) {
	n := b.m.connectionsRefused.Add(1)
	b.m.errors.Add(1)
	if n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th …: a flood logs a few lines
		b.logf("connection from %s refused: max-connections %d reached (%d refused so far)", nc.RemoteAddr(), max, n)
	}
	writeClose(nc, errorFrame("too many connections",
		fmt.Sprintf("the broker serves at most %d connections (max-connections); retry later", max), ""))
}

// isTemporary reports accept errors worth retrying, such as running out
// of file descriptors.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Ready reports whether the broker is serving clients: recovered, not
// failed, not shutting down.
func (b *Broker) Ready() bool {
	return b.recovered.Load() && !b.closing.Load() && b.Err() == nil
}

// Failed is closed when the store failed; Err then says why.
func (b *Broker) Failed() <-chan struct{} { return b.failed }

// Err returns the store error that failed the broker, or nil.
func (b *Broker) Err() error {
	select {
	case <-b.failed:
		return b.failErr
	default:
		return nil
	}
}

// fail stops the broker for good after a store error: no further
// acknowledgements, an ERROR frame to every client, Failed closed. The
// failed write is never retried.
func (b *Broker) fail(err error) {
	b.failOnce.Do(func() {
		b.failErr = fmt.Errorf("store failed: %w", err)
		b.failMsg = "broker failed"
		if b.opts.FailMessage != nil {
			if m := b.opts.FailMessage(err); m != "" {
				b.failMsg = m
			}
		}
		close(b.failed)
		b.logf("FAIL-STOP: %v", b.failErr)
		b.mu.Lock()
		conns := make([]*conn, 0, len(b.conns))
		for c := range b.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()
		for _, c := range conns {
			if c.writerOn.Load() {
				c.sendError(b.failMsg, b.failErr.Error(), "")
			} else {
				c.nc.Close() // its reader owns writes until CONNECTED
			}
		}
	})
}

// Fail stops the broker as a store error does, for a failure found outside
// the store (refbroker's lost lease): err is reported as the store's.
func (b *Broker) Fail(err error) { b.fail(err) }

func (b *Broker) isFailed() bool {
	select {
	case <-b.failed:
		return true
	default:
		return false
	}
}

// Shutdown stops accepting, lets each connection finish the frame it is
// performing and flush its outbox, writes pending acks, and returns. It
// does not close the store. When ctx ends first, remaining connections are
// closed hard.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closing.Store(true)
	b.wakeMemLocked()
	ln := b.ln
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range conns {
			c.nc.Close()
		}
		<-done
	}
	b.dead.stop()
	b.acker.stop()
	b.cancel()
	return err
}

// enqueue makes messages visible to consumers, in order; caller holds b.mu.
func (b *Broker) enqueueLocked(msgs []*message) {
	var last *queue
	for _, m := range msgs {
		b.ord++
		m.ord = b.ord
		if !m.persistent {
			b.npSeq++
			m.id = "ID:refbroker-" + b.bootID + "-" + strconv.FormatUint(b.npSeq, 10)
		}
		b.keepOrPage(m)
		m.queue = b.queueLocked(m.dest)
		m.queue.push(m)
		if last != nil && last != m.queue {
			b.dispatchLocked(last)
		}
		last = m.queue
	}
	if last != nil {
		b.dispatchLocked(last)
	}
	b.m.messagesIn.Add(uint64(len(msgs)))
}

// dispatchLocked hands ready messages to subscriptions with prefetch room;
// caller holds b.mu.
func (b *Broker) dispatchLocked(q *queue) {
	for q.depth() > 0 && len(q.subs) > 0 {
		s := q.nextSub()
		if s == nil {
			return
		}
		m := q.pop()
		c := s.c
		c.nextTag++
		d := &delivery{msg: m, sub: s, tag: c.nextTag, redelivered: m.redelivered}
		s.unacked = append(s.unacked, d)
		s.inflight++
		q.inflight++
		c.deliveries[d.tag] = d
		if m.redelivered {
			b.m.messagesRedelivered.Add(1)
		}
		c.out.push(outItem{d: d})
	}
}

// settleLocked ends a delivery: acked (ack=true) or handed back to its
// queue. It returns the Seq to ack in the store, or 0. Caller holds b.mu.
func (b *Broker) settleLocked(d *delivery, ack bool) uint64 {
	if d.state == stDone {
		return 0
	}
	d.state = stDone
	s := d.sub
	s.inflight--
	s.q.inflight--
	delete(s.c.deliveries, d.tag)
	m := d.msg
	if !ack {
		if d.sent.Load() {
			m.redeliveries++
		}
		if !b.deadLocked(m) {
			s.q.giveBack(m)
		}
		return 0
	}
	b.forget(m)
	b.m.messagesAcked.Add(1)
	return m.seq
}

// loadBody reads back the body of a message kept without it.
func (b *Broker) loadBody(seq uint64) ([]byte, error) {
	if b.loader == nil {
		return nil, fmt.Errorf("server: message %d has no body and the store cannot load it", seq)
	}
	return b.loader.Load(b.ctx, seq)
}
