package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// ErrFenced is a write the master cannot acknowledge any more: it met a
// newer master.
var ErrFenced = errors.New("replication: fenced by a newer master")

// welcomeTimeout bounds how long a replica may take to prepare its store
// for a resync (reopening a journal preallocates a segment).
const welcomeTimeout = 30 * time.Second

// snapshotChunk bounds the body bytes of one snapshot frame.
const snapshotChunk = 1 << 20

// Master is a node's store while it is master: every write goes into the
// local store (the journal, which taps each group commit to the master
// before its fdatasync) and is streamed to the replicas; Write returns
// once the local store made it durable and MinReplicas in-sync replicas
// acknowledged it (and every replica the witness counts as in sync, so
// that whichever of them takes over holds it). It implements store.Store,
// store.Loader, store.Statser and store.Namer.
type Master struct {
	n     *Node
	st    store.Store
	epoch uint64

	gate sync.RWMutex // writes share it; a snapshot takes it alone

	mu        sync.Mutex
	base      uint64 // the LSN the term started at
	lsn       uint64 // batches tapped so far
	pending   map[*store.Batch]*uint64
	links     map[string]*link
	changed   chan struct{}
	closed    bool
	fenced    string
	confirmed []string // replicas the witness counts as in sync
	witness   bool     // confirmed applies

	stop chan struct{}
	wg   sync.WaitGroup
}

// link is the master's connection to one replica.
type link struct {
	addr  string
	id    string
	conn  net.Conn
	w     *connWriter
	wake  chan struct{}
	snap  []*store.Batch
	snapL uint64 // LSN of the snapshot
	next  uint64 // the master's next seq at the snapshot

	// Guarded by Master.mu.
	queue  [][]byte
	queued int64
	sent   uint64 // highest LSN queued to it
	acked  uint64
	inSync bool
	dead   bool
	since  time.Time
	resync string // how it joined: "full" (snapshot) or "tail" (resumed)
	copied int64  // bytes of the snapshot or the tail it joined with
}

func newMaster(n *Node, st store.Store, epoch uint64) *Master {
	return &Master{n: n, st: st, epoch: epoch, pending: map[*store.Batch]*uint64{},
		links: map[string]*link{}, changed: make(chan struct{}), stop: make(chan struct{})}
}

func (m *Master) start() {
	for _, p := range m.n.o.Peers {
		m.wg.Add(1)
		go m.linkLoop(p)
	}
}

func (m *Master) logf(format string, args ...any) { m.n.o.Logf("replication: "+format, args...) }

// broadcastLocked wakes every Write waiting on replicas.
func (m *Master) broadcastLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// tap streams a group just written to the local store to every replica
// (the journal's writer goroutine calls it before the group's fdatasync).
func (m *Master) tap(bs []*store.Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := m.lsn + 1
	for _, b := range bs {
		m.lsn++
		if p := m.pending[b]; p != nil {
			*p = m.lsn
		}
	}
	frame := appendFrame(nil, typeGroup, encodeGroup(first, bs))
	m.n.remember(histEntry{epoch: m.epoch, id: m.n.o.ID, first: first, last: m.lsn, frame: frame})
	if len(m.links) == 0 {
		return
	}
	for _, l := range m.links {
		if l.dead {
			continue
		}
		l.queue = append(l.queue, frame)
		l.queued += int64(len(frame))
		l.sent = m.lsn
		if l.queued > m.n.o.MaxLag {
			m.dropLocked(l, fmt.Sprintf("%d bytes behind (more than %d)", l.queued, m.n.o.MaxLag))
			continue
		}
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Write implements store.Store.
func (m *Master) Write(ctx context.Context, b *store.Batch) error {
	var lsn uint64
	m.gate.RLock()
	m.mu.Lock()
	if err := m.refusedLocked(); err != nil {
		m.mu.Unlock()
		m.gate.RUnlock()
		return err
	}
	m.pending[b] = &lsn
	m.mu.Unlock()
	err := m.st.Write(ctx, b)
	m.mu.Lock()
	delete(m.pending, b)
	at := lsn
	m.mu.Unlock()
	m.gate.RUnlock()
	if err != nil {
		return err
	}
	if at == 0 {
		return nil // empty: nothing was written
	}
	return m.waitReplicated(ctx, at)
}

func (m *Master) refusedLocked() error {
	if m.fenced != "" {
		return fmt.Errorf("%w: %s", ErrFenced, m.fenced)
	}
	if m.closed {
		return store.ErrClosed
	}
	return nil
}

// waitReplicated waits until lsn is held as promised.
func (m *Master) waitReplicated(ctx context.Context, lsn uint64) error {
	for {
		m.mu.Lock()
		if err := m.refusedLocked(); err != nil {
			m.mu.Unlock()
			return err
		}
		ok := m.replicatedLocked(lsn)
		ch := m.changed
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replication: waiting for %d in-sync replicas: %w", m.n.o.MinReplicas, ctx.Err())
		}
	}
}

func (m *Master) replicatedLocked(lsn uint64) bool {
	count := 0
	has := map[string]bool{}
	for _, l := range m.links {
		if !l.dead && l.inSync && l.acked >= lsn {
			count++
			has[l.id] = true
		}
	}
	if count < m.n.o.MinReplicas {
		return false
	}
	if m.witness {
		for _, id := range m.confirmed {
			if !has[id] {
				return false
			}
		}
	}
	return true
}

// inSync returns the ids of the in-sync replicas, sorted.
func (m *Master) inSync() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, l := range m.links {
		if !l.dead && l.inSync {
			ids = append(ids, l.id)
		}
	}
	sort.Strings(ids)
	return ids
}

// confirm records the in-sync replicas the witness now holds: from now on
// a write waits for each of them.
func (m *Master) confirm(ids []string) {
	m.mu.Lock()
	m.witness, m.confirmed = true, ids
	m.broadcastLocked()
	m.mu.Unlock()
}

// fence stops acknowledging: a newer master exists.
func (m *Master) fence(reason string) {
	m.mu.Lock()
	if m.fenced == "" {
		m.fenced = reason
	}
	m.broadcastLocked()
	m.mu.Unlock()
}

func (m *Master) dropLocked(l *link, reason string) {
	if l.dead {
		return
	}
	l.dead = true
	l.queue, l.queued = nil, 0
	if m.links[l.addr] == l {
		delete(m.links, l.addr)
	}
	if l.conn != nil {
		l.conn.Close()
	}
	m.broadcastLocked()
	m.logf("replica %s (%s) dropped: %s", l.id, l.addr, reason)
}

func (m *Master) drop(l *link, reason string) {
	m.mu.Lock()
	m.dropLocked(l, reason)
	m.mu.Unlock()
}

// linkLoop keeps a link to the replica at addr, reconnecting.
func (m *Master) linkLoop(addr string) {
	defer m.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		err := m.runLink(addr)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			m.logf("link to %s: %v", addr, err)
		}
		select {
		case <-m.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.n.o.Timeout/2)
	}
}

func (m *Master) runLink(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.n.o.Timeout)
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := m.n.o.Transport.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	w := &connWriter{c: c, timeout: m.n.o.Timeout}
	m.mu.Lock()
	lsn := m.lsn
	m.mu.Unlock()
	if err := w.send(typeHello, hello{Epoch: m.epoch, ID: m.n.o.ID, LSN: lsn}.encode()); err != nil {
		return err
	}
	fr := newFrameReader(c)
	// The replica wipes and reopens its store before it welcomes us.
	typ, p, err := readFrame(c, fr, max(m.n.o.Timeout, welcomeTimeout))
	if err != nil {
		return fmt.Errorf("waiting for welcome: %w", err)
	}
	if typ != typeWelcome {
		return fmt.Errorf("%w: frame type %d instead of welcome", ErrProtocol, typ)
	}
	wl, err := decodeWelcome(p)
	if err != nil {
		return err
	}
	if !wl.OK {
		if !wins(m.epoch, m.n.o.ID, wl.Epoch, wl.ID) {
			m.n.markStale(fmt.Sprintf("%s at %s knows epoch %d, ours is %d", wl.ID, addr, wl.Epoch, m.epoch))
			return fmt.Errorf("stale: %s knows epoch %d", wl.ID, wl.Epoch)
		}
		return fmt.Errorf("%s refused us (epoch %d)", wl.ID, wl.Epoch)
	}
	l := &link{addr: addr, id: wl.ID, conn: c, w: w, wake: make(chan struct{}, 1), since: time.Now()}
	resumed := false
	if wl.Pos != nil {
		if resumed, err = m.resume(l, *wl.Pos, fr); err != nil {
			return err
		}
	}
	if !resumed {
		if err := m.snapshot(l); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		m.logf("replica %s (%s) connected: resync of %d messages at lsn %d", l.id, addr, countAdds(l.snap), l.snapL)
	}
	done := make(chan struct{})
	defer close(done)
	go m.send(l, done)
	return m.receive(l, fr)
}

func countAdds(bs []*store.Batch) int {
	n := 0
	for _, b := range bs {
		n += len(b.Adds)
	}
	return n
}

// resume registers l to be sent the groups after the replica's position
// p, when the history proves its log a prefix of ours (see position.go),
// and tells it so. Otherwise it tells the replica to reset its store and
// reads its second welcome: the caller then sends a snapshot.
func (m *Master) resume(l *link, p position, fr *frameReader) (bool, error) {
	m.gate.Lock()
	m.mu.Lock()
	if err := m.refusedLocked(); err != nil {
		m.mu.Unlock()
		m.gate.Unlock()
		return false, err
	}
	cur := m.lsn
	frames, size, why := m.n.tail(p, m.epoch, m.n.o.ID, m.base, cur)
	if why == "" {
		l.snapL, l.sent, l.acked = cur, cur, 0
		l.queue, l.queued = frames, size
		l.resync, l.copied = "tail", size
		if old := m.links[l.addr]; old != nil {
			m.dropLocked(old, "reconnected")
		}
		m.links[l.addr] = l
	}
	m.mu.Unlock()
	m.gate.Unlock()
	if why == "" {
		// Before the send loop starts: the tail is queued behind it.
		if err := l.w.send(typeResume, resume{OK: true, LSN: cur}.encode()); err != nil {
			m.drop(l, fmt.Sprintf("send resume: %v", err))
			return false, err
		}
		m.logf("replica %s (%s) connected at lsn %d: resumed, %d groups (%d bytes) to lsn %d", l.id, l.addr, p.LSN, len(frames), size, cur)
		return true, nil
	}
	m.logf("replica %s (%s) cannot resume: %s; copying it whole", l.id, l.addr, why)
	if err := l.w.send(typeResume, resume{}.encode()); err != nil {
		return false, err
	}
	typ, b, err := readFrame(l.conn, fr, max(m.n.o.Timeout, welcomeTimeout))
	if err != nil {
		return false, fmt.Errorf("waiting for welcome after reset: %w", err)
	}
	if typ != typeWelcome {
		return false, fmt.Errorf("%w: frame type %d instead of welcome", ErrProtocol, typ)
	}
	if wl, err := decodeWelcome(b); err != nil || !wl.OK || wl.Pos != nil {
		return false, fmt.Errorf("%w: second welcome %+v (%v)", ErrProtocol, wl, err)
	}
	return false, nil
}

// snapshot takes the live messages at the current LSN, with no write in
// flight, and registers l so that every later group is queued to it.
func (m *Master) snapshot(l *link) error {
	m.gate.Lock()
	defer m.gate.Unlock()
	m.mu.Lock()
	if err := m.refusedLocked(); err != nil {
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	var (
		bs   []*store.Batch
		cur  = &store.Batch{}
		size int
	)
	loader, _ := m.st.(store.Loader)
	err := m.st.Recover(context.Background(), func(msg *store.Message) error {
		if msg.Body == nil && msg.Size > 0 {
			if loader == nil {
				return fmt.Errorf("message %d without its body and the store is no Loader", msg.Seq)
			}
			body, err := loader.Load(context.Background(), msg.Seq)
			if err != nil {
				return err
			}
			msg.Body = body
		}
		cur.Adds = append(cur.Adds, msg)
		size += len(msg.Body) + 64
		if size >= snapshotChunk {
			bs, cur, size = append(bs, cur), &store.Batch{}, 0
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.snap = append(bs, cur)
	if a, ok := m.st.(store.Applier); ok {
		l.next = a.NextSeq()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l.snapL, l.sent, l.acked = m.lsn, m.lsn, 0
	l.resync = "full"
	if old := m.links[l.addr]; old != nil {
		m.dropLocked(old, "reconnected")
	}
	m.links[l.addr] = l
	return nil
}

// send writes l's snapshot, then its queue, and a ping whenever the link
// has been idle for a heart-beat.
func (m *Master) send(l *link, done <-chan struct{}) {
	for i, b := range l.snap {
		s := snapshot{LSN: l.snapL, Next: l.next, Final: i == len(l.snap)-1, Batch: b}
		f := appendFrame(nil, typeSnapshot, s.encode())
		if err := l.w.write(f); err != nil {
			m.drop(l, fmt.Sprintf("send snapshot: %v", err))
			return
		}
		m.mu.Lock()
		l.copied += int64(len(f))
		m.mu.Unlock()
	}
	l.snap = nil
	hb := time.NewTicker(m.n.o.Heartbeat)
	defer hb.Stop()
	for {
		m.mu.Lock()
		if l.dead {
			m.mu.Unlock()
			return
		}
		q := l.queue
		l.queue, l.queued = nil, 0
		sent := l.sent
		m.mu.Unlock()
		if len(q) > 0 {
			if err := l.w.write(q...); err != nil {
				m.drop(l, fmt.Sprintf("send: %v", err))
				return
			}
			continue
		}
		select {
		case <-l.wake:
		case <-hb.C:
			if err := l.w.send(typePing, encodeLSN(sent)); err != nil {
				m.drop(l, fmt.Sprintf("ping: %v", err))
				return
			}
		case <-done:
			return
		case <-m.stop:
			return
		}
	}
}

// receive reads l's acknowledgements until the link fails. An ack beyond
// what was sent, or going back, is a replica lying about its position:
// it is dropped, and never counted.
func (m *Master) receive(l *link, fr *frameReader) error {
	for {
		typ, p, err := readFrame(l.conn, fr, m.n.o.Timeout)
		if err != nil {
			m.drop(l, fmt.Sprintf("no ack or heart-beat: %v", err))
			return err
		}
		if typ != typeAck {
			err := fmt.Errorf("%w: frame type %d from a replica", ErrProtocol, typ)
			m.drop(l, err.Error())
			return err
		}
		lsn, err := decodeLSN(p, "ack")
		if err != nil {
			m.drop(l, err.Error())
			return err
		}
		m.mu.Lock()
		if l.dead {
			m.mu.Unlock()
			return net.ErrClosed
		}
		var bad string
		switch {
		case lsn > l.sent:
			bad = fmt.Sprintf("acknowledged lsn %d, only %d was sent", lsn, l.sent)
		case lsn < l.acked:
			bad = fmt.Sprintf("acknowledged lsn %d after %d", lsn, l.acked)
		}
		if bad != "" {
			err := fmt.Errorf("%w: replica %s %s", ErrProtocol, l.id, bad)
			m.dropLocked(l, err.Error())
			m.mu.Unlock()
			return err
		}
		l.acked = lsn
		if !l.inSync && lsn < l.snapL {
			m.mu.Unlock()
			continue // applying the snapshot: progress, not yet in sync
		}
		caughtUp := !l.inSync
		if caughtUp {
			l.inSync = true
			m.logf("replica %s (%s) in sync at lsn %d", l.id, l.addr, lsn)
		}
		m.broadcastLocked()
		m.mu.Unlock()
		if caughtUp {
			m.n.replicaInSync()
		}
	}
}

// stopLinks ends every link and waits for the link loops.
func (m *Master) stopLinks() {
	m.mu.Lock()
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	for _, l := range m.links {
		m.dropLocked(l, "master stopping")
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Recover implements store.Store.
func (m *Master) Recover(ctx context.Context, fn func(*store.Message) error) error {
	return m.st.Recover(ctx, fn)
}

// Load implements store.Loader.
func (m *Master) Load(ctx context.Context, seq uint64) ([]byte, error) {
	l, ok := m.st.(store.Loader)
	if !ok {
		return nil, fmt.Errorf("replication: %T cannot load bodies", m.st)
	}
	return l.Load(ctx, seq)
}

// Close implements store.Store: it stops streaming and closes the store.
func (m *Master) Close() error {
	m.mu.Lock()
	m.closed = true
	m.broadcastLocked()
	m.mu.Unlock()
	m.stopLinks()
	return m.st.Close()
}

// Name implements store.Namer.
func (m *Master) Name() string {
	if n, ok := m.st.(store.Namer); ok {
		return "replicated-" + n.Name()
	}
	return "replicated"
}

// Stats implements store.Statser: the store's, plus the replicas.
func (m *Master) Stats() map[string]float64 {
	st := map[string]float64{}
	if s, ok := m.st.(store.Statser); ok {
		for k, v := range s.Stats() {
			st[k] = v
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in := 0
	var lag uint64
	for _, l := range m.links {
		if l.inSync {
			in++
		}
		lag = max(lag, m.lsn-l.acked)
	}
	st["replication_lsn"] = float64(m.lsn)
	st["replication_replicas_in_sync"] = float64(in)
	st["replication_lag_records_max"] = float64(lag)
	return st
}
