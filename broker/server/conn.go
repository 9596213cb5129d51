package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/stomp"
	"github.com/lossbench/lossbench/broker/store"
)

// clientError is a fault of the client: answered with an ERROR frame, then
// the connection is closed.
type clientError struct {
	message string // the ERROR frame's message header
	detail  string // its body
	receipt string // the offending frame's receipt, if any
	quiet   bool   // not logged (a throttled login)
}

func (e *clientError) Error() string { return e.message + ": " + e.detail }

func errClient(f *stomp.Frame, message, format string, args ...any) error {
	return &clientError{message: message, detail: fmt.Sprintf(format, args...), receipt: f.Get("receipt")}
}

// dedupConflict is a SEND whose dedup-id names another message in its
// destination: sends[index] of the batch; nothing of the batch is stored.
type dedupConflict struct {
	index int
	*clientError
}

func (e *dedupConflict) Unwrap() error { return e.clientError }

var (
	errDisconnect  = errors.New("server: client disconnected")
	errStoreFailed = errors.New("server: store failed")
)

// Limits on what one SEND batch gathers from a connection's read buffer.
const (
	maxBatchMsgs  = 256
	maxBatchBytes = 1 << 20
)

// conn is one client connection.
type conn struct {
	b          *Broker
	nc         net.Conn
	remote     string
	dr         deadlineReader
	r          *stomp.Reader
	out        outbox
	writerOn   atomic.Bool
	writerDone chan struct{}

	// Reader goroutine only.
	subs         map[string]*subscription
	txs          map[string]*tx
	pending      []pendingSend
	pendingBytes int

	// Guarded by Broker.mu.
	nextTag    uint64
	deliveries map[uint64]*delivery
}

// pendingSend is a SEND waiting to be written and enqueued.
type pendingSend struct {
	msg     *message
	receipt string
	start   time.Time
	entry   *dedupEntry // dedup entry this send owns, or waits for when dup
	dup     bool
	sum     uint32 // CRC-32C of the body when it has a dedup-id
}

// Bounds on one transaction, which is held in memory until COMMIT.
const (
	maxTxMsgs  = 100_000
	maxTxBytes = 256 << 20
)

// tx is an open STOMP transaction.
type tx struct {
	bytes   int
	held    int64 // admitted under MaxMemory for its sends until COMMIT or ABORT
	sends   []pendingSend
	settles []txSettle
}

type txSettle struct {
	d   *delivery
	ack bool // false: NACK
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{
		b:          b,
		nc:         nc,
		remote:     nc.RemoteAddr().String(),
		writerDone: make(chan struct{}),
		subs:       make(map[string]*subscription),
		txs:        make(map[string]*tx),
		deliveries: make(map[uint64]*delivery),
	}
	c.dr.nc = nc
	c.r = stomp.NewReader(&c.dr, b.opts.Limits)
	c.out.init()
	return c
}

// stopReading ends the reader after the frame it is performing, leaving
// the writer to flush receipts; used by Shutdown.
func (c *conn) stopReading() { c.dr.stop() }

func (c *conn) serve() {
	defer c.b.wg.Done()
	defer c.teardown()
	// A fixed deadline: heart-beats do not extend the wait for CONNECT.
	c.nc.SetReadDeadline(time.Now().Add(c.b.opts.ConnectTimeout))
	var f *stomp.Frame
	var err error
	for f == nil && err == nil {
		f, err = c.r.ReadFrame()
	}
	if err != nil {
		c.readFailed(err)
		return
	}
	if err := c.handleConnect(f); err != nil {
		c.finish(err)
		return
	}
	c.dr.frameTimeout = c.b.opts.FrameTimeout
	for {
		if len(c.pending) > 0 && (c.r.Buffered() == 0 || len(c.pending) >= maxBatchMsgs || c.pendingBytes >= maxBatchBytes) {
			if err := c.flushSends(); err != nil {
				c.finish(err)
				return
			}
		}
		if c.r.Buffered() > 0 {
			c.dr.frameStarted() // the next frame is already under way
		}
		f, err := c.r.ReadFrame()
		if err != nil {
			if len(c.pending) > 0 {
				// Complete SENDs before a torn or bad frame still count;
				// their receipts go out if the connection can take them.
				if ferr := c.flushSends(); ferr != nil {
					c.finish(ferr)
					return
				}
			}
			c.readFailed(err)
			return
		}
		c.dr.frameDone()
		if f == nil {
			continue // heart-beat
		}
		if f.Command != stomp.SEND && len(c.pending) > 0 {
			if err := c.flushSends(); err != nil {
				c.finish(err)
				return
			}
		}
		if err := c.handle(f); err != nil {
			c.finish(err)
			return
		}
	}
}

// readFailed ends the connection after a read error: an ERROR frame for a
// protocol violation, silence for a vanished client.
func (c *conn) readFailed(err error) {
	var pe *stomp.ProtocolError
	if errors.As(err, &pe) {
		c.b.logf("conn %s: %v", c.remote, err)
		c.sendError(kindMessage(pe.Kind), pe.Detail, "")
		return
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || c.dr.isStopped() {
		return
	}
	if c.dr.frameExpired() {
		c.b.logf("conn %s: frame not completed within %v, closing", c.remote, c.b.opts.FrameTimeout)
		c.sendError("frame timeout", fmt.Sprintf("a frame must arrive whole within %v of its first byte", c.b.opts.FrameTimeout), "")
	} else {
		c.b.logf("conn %s: read timeout (no frame or heart-beat), closing", c.remote)
		c.sendError("timeout", "no data within the negotiated heart-beat or connect timeout", "")
	}
}

func kindMessage(kind error) string {
	return strings.TrimPrefix(kind.Error(), "stomp: ")
}

// finish ends the connection after a handler error.
func (c *conn) finish(err error) {
	var ce *clientError
	switch {
	case errors.As(err, &ce):
		if !ce.quiet {
			c.b.logf("conn %s: ERROR %s: %s", c.remote, ce.message, ce.detail)
		}
		c.sendError(ce.message, ce.detail, ce.receipt)
	case err == errDisconnect, err == errStoreFailed:
	default:
		c.b.logf("conn %s: %v", c.remote, err)
		c.sendError("internal error", err.Error(), "")
	}
}

// sendError queues an ERROR frame and closes the connection after it.
func (c *conn) sendError(message, detail, receipt string) {
	f := errorFrame(message, detail, receipt)
	c.b.m.errors.Add(1)
	if c.writerOn.Load() {
		c.out.push(outItem{f: f, close: true})
		return
	}
	// Before CONNECTED there is no writer goroutine; only the reader
	// writes.
	writeClose(c.nc, f)
}

func errorFrame(message, detail, receipt string) *stomp.Frame {
	f := &stomp.Frame{Command: stomp.ERROR, Headers: []stomp.Header{{Key: "message", Value: message}}}
	if receipt != "" {
		f.Add("receipt-id", receipt)
	}
	f.Add("content-type", "text/plain")
	f.Body = []byte(detail)
	return f
}

// writeClose writes f straight to nc with a short deadline and closes nc:
// for a connection with no writer goroutine (before CONNECTED, or refused).
func writeClose(nc net.Conn, f *stomp.Frame) {
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	w := stomp.NewWriterSize(nc, 512)
	w.WriteFrame(f)
	w.Flush()
	nc.Close()
}

// teardown hands every unacknowledged delivery back to its queue and lets
// the writer flush what frames remain.
func (c *conn) teardown() {
	b := c.b
	b.mu.Lock()
	delete(b.conns, c)
	for _, s := range c.subs {
		b.removeSubLocked(s)
	}
	b.mu.Unlock()
	for _, t := range c.txs {
		b.releaseTx(t)
	}
	c.subs, c.txs, c.pending = nil, nil, nil
	if c.writerOn.Load() {
		c.out.shutdown()
		<-c.writerDone
		b.m.connections.Add(-1)
	} else {
		c.nc.Close()
	}
}

// removeSubLocked detaches s and hands its unacked messages back; caller
// holds b.mu.
func (b *Broker) removeSubLocked(s *subscription) {
	s.q.removeSub(s)
	for _, d := range s.unacked {
		b.settleLocked(d, false)
	}
	s.unacked = nil
	b.dispatchLocked(s.q)
}

func (c *conn) handleConnect(f *stomp.Frame) error {
	if f.Command != stomp.CONNECT && f.Command != stomp.STOMP {
		return errClient(f, "not connected", "expected CONNECT or STOMP, got %s", f.Command)
	}
	o := &c.b.opts
	if !versionOK(f.Get("accept-version")) {
		c.sendErrorVersion()
		return errDisconnect
	}
	if o.Login != "" || o.Passcode != "" {
		if !c.b.logins.allow(c.remote) {
			return &clientError{message: "too many failed logins", quiet: true,
				detail: fmt.Sprintf("more than %d failed logins from this address within %v; try later", o.MaxLoginFailures, loginWindow)}
		}
		login, pass := f.Get("login"), f.Get("passcode")
		if subtle.ConstantTimeCompare([]byte(login), []byte(o.Login)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(o.Passcode)) != 1 {
			err := errClient(f, "access refused", "bad login or passcode")
			err.(*clientError).quiet = !c.b.logins.failed(c.remote)
			return err
		}
	}
	if err := c.b.Err(); err != nil {
		return errClient(f, c.b.failMsg, "%v", err)
	}
	if c.b.closing.Load() {
		return errClient(f, "shutting down", "broker is shutting down")
	}
	cx, cy, ok := parseHeartBeat(f.Get("heart-beat"))
	if !ok {
		return errClient(f, "malformed frame", "bad heart-beat header %q", f.Get("heart-beat"))
	}
	var send, recv time.Duration
	if cy > 0 && o.HeartbeatSend > 0 {
		send = max(cy, o.HeartbeatSend)
	}
	if cx > 0 && o.HeartbeatReceive > 0 {
		recv = max(cx, o.HeartbeatReceive)
	}
	c.dr.setTimeout(time.Duration(float64(recv) * o.HeartbeatGrace))
	c.b.m.connections.Add(1)
	c.writerOn.Store(true)
	go c.writeLoop(send)
	c.out.push(outItem{f: &stomp.Frame{Command: stomp.CONNECTED, Headers: []stomp.Header{
		{Key: "version", Value: "1.2"},
		{Key: "heart-beat", Value: strconv.FormatInt(o.HeartbeatSend.Milliseconds(), 10) + "," +
			strconv.FormatInt(o.HeartbeatReceive.Milliseconds(), 10)},
		{Key: "server", Value: "refbroker/" + o.Version},
		{Key: "session", Value: c.b.bootID + "-" + c.remote},
	}}})
	return nil
}

func (c *conn) sendErrorVersion() {
	f := &stomp.Frame{Command: stomp.ERROR, Headers: []stomp.Header{
		{Key: "version", Value: "1.2"}, {Key: "message", Value: "unsupported protocol version"},
		{Key: "content-type", Value: "text/plain"},
	}, Body: []byte("refbroker speaks STOMP 1.2 only; send accept-version:1.2")}
	c.b.m.errors.Add(1)
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	w := stomp.NewWriterSize(c.nc, 512)
	w.WriteFrame(f)
	w.Flush()
	c.nc.Close()
}

func versionOK(accept string) bool {
	for v := range strings.SplitSeq(accept, ",") {
		if strings.TrimSpace(v) == "1.2" {
			return true
		}
	}
	return false
}

// parseHeartBeat parses "cx,cy" in milliseconds; absent means 0,0.
func parseHeartBeat(s string) (cx, cy time.Duration, ok bool) {
	if s == "" {
		return 0, 0, true
	}
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
	y, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond, true
}

func (c *conn) handle(f *stomp.Frame) error {
	switch f.Command {
	case stomp.SEND:
		return c.handleSend(f)
	case stomp.ACK:
		return c.handleAck(f, true)
	case stomp.NACK:
		return c.handleAck(f, false)
	case stomp.SUBSCRIBE:
		return c.handleSubscribe(f)
	case stomp.UNSUBSCRIBE:
		return c.handleUnsubscribe(f)
	case stomp.BEGIN:
		return c.handleBegin(f)
	case stomp.COMMIT:
		return c.handleCommit(f)
	case stomp.ABORT:
		return c.handleAbort(f)
	case stomp.DISCONNECT:
		if r := f.Get("receipt"); r != "" {
			c.out.push(outItem{receipt: r, close: true})
		}
		return errDisconnect
	case stomp.CONNECT, stomp.STOMP:
		return errClient(f, "protocol error", "already connected")
	}
	return errClient(f, "unknown command", "unknown command %q", f.Command)
}

func (c *conn) receipt(f *stomp.Frame) {
	if r := f.Get("receipt"); r != "" {
		c.b.m.receipts.Add(1)
		c.out.push(outItem{receipt: r})
	}
}

// queueName validates a destination: queues only.
func queueName(f *stomp.Frame) (string, error) {
	d := f.Get("destination")
	switch {
	case d == "":
		return "", errClient(f, "missing header", "%s needs a destination header", f.Command)
	case strings.HasPrefix(d, "/topic/"):
		return "", errClient(f, "unsupported destination", "topics are not supported (%s); use /queue/...", d)
	case !strings.HasPrefix(d, "/queue/") || len(d) == len("/queue/"):
		return "", errClient(f, "unsupported destination", "destination %q is not /queue/<name>", d)
	}
	return d, nil
}

// keptHeader reports whether a SEND header travels with the message.
func keptHeader(k string) bool {
	switch k {
	case "destination", "receipt", "transaction", "content-length",
		"message-id", "subscription", "ack", "redelivered":
		return false
	}
	return true
}

func (c *conn) handleSend(f *stomp.Frame) error {
	if c.b.isFailed() {
		return errStoreFailed
	}
	dest, err := queueName(f)
	if err != nil {
		return err
	}
	if err := c.admitQueue(f, dest); err != nil {
		return err
	}
	n := 0
	for _, h := range f.Headers {
		if keptHeader(h.Key) {
			n++
		}
	}
	sm := &sentMessage{m: message{
		dest:       dest,
		body:       f.Body,
		size:       len(f.Body),
		persistent: f.Get("persistent") == "true",
	}}
	m := &sm.m
	if n <= len(sm.h) {
		m.headers = sm.h[:0:n]
	} else {
		m.headers = make([]store.Header, 0, n)
	}
	for _, h := range f.Headers {
		if keptHeader(h.Key) {
			m.headers = append(m.headers, store.Header(h))
			if h.Key == HeaderDedup && m.dedupID == "" {
				m.dedupID = h.Value
			}
		}
	}
	p := pendingSend{msg: m, receipt: f.Get("receipt")}
	if m.dedupID != "" {
		p.sum = bodySum(m.body)
	}
	if p.receipt != "" {
		p.start = time.Now()
	}
	if txID := f.Get("transaction"); txID != "" {
		t := c.txs[txID]
		if t == nil {
			return errClient(f, "unknown transaction", "transaction %q not begun", txID)
		}
		t.bytes += m.size
		if len(t.sends) >= maxTxMsgs || t.bytes > maxTxBytes {
			return errClient(f, "transaction too large", "transaction %q exceeds %d messages or %d bytes", txID, maxTxMsgs, maxTxBytes)
		}
		// Held until COMMIT: it counts under MaxMemory from now on.
		need := c.b.need(m)
		if err := c.b.admit(need); err != nil {
			return err
		}
		t.held += need
		t.sends = append(t.sends, p)
		c.receipt(f)
		return nil
	}
	c.pending = append(c.pending, p)
	c.pendingBytes += m.size
	return nil
}

// sentMessage is a message allocated with room for the headers a SEND
// usually keeps (go-stomp's: content-type and persistent; a dedup-id):
// one allocation per SEND rather than two.
type sentMessage struct {
	m message
	h [3]store.Header
}

// admitQueue refuses a frame naming a new queue past MaxQueues.
func (c *conn) admitQueue(f *stomp.Frame, dest string) error {
	c.b.mu.Lock()
	ok := c.b.admitQueueLocked(dest)
	c.b.mu.Unlock()
	if !ok {
		return c.errTooManyQueues(f, dest)
	}
	return nil
}

func (c *conn) errTooManyQueues(f *stomp.Frame, dest string) error {
	return errClient(f, "too many queues", "the broker holds %d queues (--max-queues), none of them empty and unused; %s not created",
		c.b.opts.MaxQueues, dest)
}

// flushSends writes the connection's pending SENDs as one batch, enqueues
// them, and only then sends their receipts.
func (c *conn) flushSends() error {
	sends := c.pending
	c.pending, c.pendingBytes = c.pending[:0], 0
	err := c.b.commit(sends, nil)
	dc := asDedupConflict(err)
	if dc != nil {
		// The SENDs before the conflicting one are stored and receipted;
		// it and those after it are not stored, and get no receipt.
		if ok := sends[:dc.index]; len(ok) > 0 {
			if cerr := c.b.commit(ok, nil); cerr != nil {
				err = cerr
			}
		}
		sends = sends[:dc.index]
	}
	if (err == nil || dc != nil) && !c.b.isFailed() {
		for i := range sends {
			if r := sends[i].receipt; r != "" {
				// Counted before it is pushed: a client that has
				// its RECEIPT sees it in /metrics.
				c.b.m.receipts.Add(1)
				c.b.m.latency.observe(time.Since(sends[i].start))
				c.out.push(outItem{receipt: r})
			}
		}
	}
	clear(sends)
	return err
}

// asDedupConflict returns err's *dedupConflict, or nil. Apart, so that a
// commit without error does not allocate the target errors.As needs.
func asDedupConflict(err error) *dedupConflict {
	if err == nil {
		return nil
	}
	var dc *dedupConflict
	if !errors.As(err, &dc) {
		return nil
	}
	return dc
}

// commit makes sends and settles durable as one store batch and then
// applies them: new messages enqueued, acked deliveries settled, nacked
// ones handed back. A send whose dedup-id is known is not stored again; it
// waits for its original to be durable instead.
func (b *Broker) commit(sends []pendingSend, settles []txSettle) error {
	if b.isFailed() {
		return errStoreFailed
	}
	conflict, err := b.dedup.claim(sends, b.loadBody)
	if err != nil {
		b.fail(err)
		return errStoreFailed
	}
	if conflict >= 0 {
		m := sends[conflict].msg
		return &dedupConflict{index: conflict, clientError: &clientError{
			message: "dedup-id conflict",
			detail: fmt.Sprintf("dedup-id %q in %s already names a stored message with another body (or a non-persistent one); this SEND was not stored",
				m.dedupID, m.dest),
			receipt: sends[conflict].receipt,
		}}
	}
	var batch store.Batch
	var adds []*message
	var need int64
	for i := range sends {
		p := &sends[i]
		if p.dup {
			continue
		}
		adds = append(adds, p.msg)
		need += b.need(p.msg)
		if p.msg.persistent {
			batch.Adds = append(batch.Adds, &store.Message{Queue: p.msg.dest, Headers: p.msg.headers, Body: p.msg.body})
		}
	}
	// Flow control: wait for room in MaxMemory before storing anything.
	if err := b.admit(need); err != nil {
		for i := range sends {
			if e := sends[i].entry; e != nil && !sends[i].dup {
				e.resolve(err)
			}
		}
		return err
	}
	if len(settles) > 0 {
		b.mu.Lock()
		for _, s := range settles {
			if s.ack && s.d.state == stTxAcked && s.d.msg.persistent {
				batch.Acks = append(batch.Acks, s.d.msg.seq)
			}
		}
		b.mu.Unlock()
	}
	if len(batch.Adds) > 0 || len(batch.Acks) > 0 {
		// Pending acks ride along: one store sync instead of two.
		acks, waiters := b.acker.steal()
		batch.Acks = append(batch.Acks, acks...)
		err := b.st.Write(b.ctx, &batch)
		if err != nil {
			b.fail(err)
			err = b.Err()
		}
		for _, fn := range waiters {
			fn(err)
		}
		if err != nil {
			b.mu.Lock()
			b.releaseLocked(need)
			b.mu.Unlock()
			for i := range sends {
				if e := sends[i].entry; e != nil && !sends[i].dup {
					e.resolve(err)
				}
			}
			return errStoreFailed
		}
		if len(batch.Acks) > 0 {
			b.m.storeAcks.Add(uint64(len(batch.Acks)))
		}
		setSeqs(adds, batch.Adds)
	}
	b.mu.Lock()
	for _, s := range settles {
		if s.d.state == stTxAcked {
			b.settleLocked(s.d, s.ack)
			s.d.sub.trim()
			b.dispatchLocked(s.d.sub.q)
		}
	}
	b.enqueueLocked(adds)
	b.mu.Unlock()
	for i := range sends {
		if e := sends[i].entry; e != nil && !sends[i].dup {
			e.resolve(nil)
		}
	}
	for i := range sends {
		if !sends[i].dup {
			continue
		}
		select {
		case <-sends[i].entry.done:
		case <-b.failed:
			return errStoreFailed
		}
		if sends[i].entry.err != nil {
			return errStoreFailed
		}
		b.m.duplicates.Add(1)
	}
	return nil
}

func (c *conn) handleSubscribe(f *stomp.Frame) error {
	id := f.Get("id")
	if id == "" {
		return errClient(f, "missing header", "SUBSCRIBE needs an id header")
	}
	dest, err := queueName(f)
	if err != nil {
		return err
	}
	mode, ok := parseAckMode(f.Get("ack"))
	if !ok {
		return errClient(f, "bad header", "ack must be auto, client or client-individual, not %q", f.Get("ack"))
	}
	if c.subs[id] != nil {
		return errClient(f, "bad header", "subscription id %q already in use", id)
	}
	if len(c.subs) >= c.b.opts.MaxSubscriptions {
		return errClient(f, "too many subscriptions", "a connection may hold %d subscriptions (--max-subscriptions)", c.b.opts.MaxSubscriptions)
	}
	prefetch := c.b.opts.Prefetch
	for _, k := range []string{HeaderPrefetch, HeaderPrefetchAMQ} {
		if v, ok := f.Lookup(k); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return errClient(f, "bad header", "%s must be a positive integer, not %q", k, v)
			}
			prefetch = n
			break
		}
	}
	s := &subscription{id: id, c: c, mode: mode, prefetch: prefetch}
	b := c.b
	b.mu.Lock()
	if !b.admitQueueLocked(dest) {
		b.mu.Unlock()
		return c.errTooManyQueues(f, dest)
	}
	c.subs[id] = s
	s.q = b.queueLocked(dest)
	s.q.subs = append(s.q.subs, s)
	b.dispatchLocked(s.q)
	b.mu.Unlock()
	c.receipt(f)
	return nil
}

func (c *conn) handleUnsubscribe(f *stomp.Frame) error {
	id := f.Get("id")
	s := c.subs[id]
	if s == nil {
		return errClient(f, "bad header", "no subscription with id %q", id)
	}
	delete(c.subs, id)
	c.b.mu.Lock()
	c.b.removeSubLocked(s)
	c.b.mu.Unlock()
	c.receipt(f)
	return nil
}

func formatTag(tag uint64) string { return strconv.FormatUint(tag, 10) }

// handleAck performs ACK (ack) or NACK. In ack mode client both are
// cumulative, in client-individual they cover one message; in auto mode
// they are ignored.
func (c *conn) handleAck(f *stomp.Frame, ack bool) error {
	id := f.Get("id")
	if id == "" {
		return errClient(f, "missing header", "%s needs an id header", f.Command)
	}
	tag, perr := strconv.ParseUint(id, 10, 64)
	var t *tx
	if txID := f.Get("transaction"); txID != "" {
		if t = c.txs[txID]; t == nil {
			return errClient(f, "unknown transaction", "transaction %q not begun", txID)
		}
	}
	b := c.b
	b.mu.Lock()
	d := c.deliveries[tag]
	if d == nil {
		issued := perr == nil && tag > 0 && tag <= c.nextTag
		b.mu.Unlock()
		if !issued {
			return errClient(f, "bad header", "%s of unknown id %q", f.Command, id)
		}
		c.receipt(f) // already settled, e.g. handed back by a NACK
		return nil
	}
	// Room for the one delivery of a client-individual ACK on the stack.
	var targetsBuf [1]*delivery
	targets := targetsBuf[:0]
	switch d.sub.mode {
	case ackClient:
		for _, x := range d.sub.unacked {
			if x.tag > d.tag {
				break
			}
			if x.state == stInflight {
				targets = append(targets, x)
			}
		}
	case ackIndividual:
		if d.state == stInflight {
			targets = append(targets, d)
		}
	}
	if t != nil {
		for _, x := range targets {
			x.state = stTxAcked
			t.settles = append(t.settles, txSettle{d: x, ack: ack})
		}
		b.mu.Unlock()
		c.receipt(f)
		return nil
	}
	var seqsBuf [1]uint64
	seqs := seqsBuf[:0]
	for _, x := range targets {
		if seq := b.settleLocked(x, ack); seq != 0 {
			seqs = append(seqs, seq)
		}
	}
	d.sub.trim()
	b.dispatchLocked(d.sub.q)
	b.mu.Unlock()
	if len(seqs) == 0 {
		c.receipt(f)
		return nil
	}
	if r := f.Get("receipt"); r != "" {
		b.acker.add(seqs, func(err error) {
			if err == nil {
				b.m.receipts.Add(1)
				c.out.push(outItem{receipt: r})
			}
		})
	} else {
		b.acker.add(seqs, nil)
	}
	return nil
}

// autoAcked settles auto-ack deliveries once the writer flushed them.
func (b *Broker) autoAcked(ds []*delivery) {
	var seqs []uint64
	var last *subscription
	b.mu.Lock()
	for _, d := range ds {
		if d.state != stInflight {
			continue
		}
		if seq := b.settleLocked(d, true); seq != 0 {
			seqs = append(seqs, seq)
		}
		if d.sub != last {
			if last != nil {
				last.trim()
				b.dispatchLocked(last.q)
			}
			last = d.sub
		}
	}
	if last != nil {
		last.trim()
		b.dispatchLocked(last.q)
	}
	b.mu.Unlock()
	if len(seqs) > 0 {
		b.acker.add(seqs, nil)
	}
}

// stillInflight reports whether d is still owed to its client.
func (b *Broker) stillInflight(d *delivery) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return d.state == stInflight
}

func (c *conn) handleBegin(f *stomp.Frame) error {
	id := f.Get("transaction")
	if id == "" {
		return errClient(f, "missing header", "BEGIN needs a transaction header")
	}
	if c.txs[id] != nil {
		return errClient(f, "bad header", "transaction %q already begun", id)
	}
	c.txs[id] = &tx{}
	c.receipt(f)
	return nil
}

func (c *conn) handleCommit(f *stomp.Frame) error {
	id := f.Get("transaction")
	t := c.txs[id]
	if t == nil {
		return errClient(f, "unknown transaction", "transaction %q not begun", id)
	}
	delete(c.txs, id)
	c.b.releaseTx(t) // commit admits what it stores
	if err := c.b.commit(t.sends, t.settles); err != nil {
		var dc *dedupConflict
		if errors.As(err, &dc) {
			return errClient(f, dc.message, "transaction %q not committed, nothing of it stored: %s", id, dc.detail)
		}
		return err
	}
	if !c.b.isFailed() {
		c.receipt(f)
	}
	return nil
}

func (c *conn) handleAbort(f *stomp.Frame) error {
	id := f.Get("transaction")
	t := c.txs[id]
	if t == nil {
		return errClient(f, "unknown transaction", "transaction %q not begun", id)
	}
	delete(c.txs, id)
	c.b.releaseTx(t)
	c.b.mu.Lock()
	for _, s := range t.settles {
		if s.d.state == stTxAcked {
			s.d.state = stInflight
		}
	}
	c.b.mu.Unlock()
	c.receipt(f)
	return nil
}
