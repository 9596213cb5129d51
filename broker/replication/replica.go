package replication

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// replicate serves the master that sent h on c: it accepts a master no
// older than any it knows, is resumed from its position or else resyncs
// from the master's snapshot, then applies its groups and acknowledges
// them.
func (n *Node) replicate(c net.Conn, fr *frameReader, h hello) {
	n.mu.Lock()
	if n.master {
		mine := n.masterEpoch
		n.mu.Unlock()
		c.SetWriteDeadline(time.Now().Add(n.o.Timeout))
		c.Write(appendFrame(nil, typeWelcome, welcome{Epoch: mine, ID: n.o.ID}.encode()))
		if wins(h.Epoch, h.ID, mine, n.o.ID) {
			n.markStale(fmt.Sprintf("master %s with epoch %d reached this master (epoch %d)", h.ID, h.Epoch, mine))
		}
		return
	}
	if h.Epoch < n.epoch || n.stale != "" {
		known := n.epoch
		n.mu.Unlock()
		c.SetWriteDeadline(time.Now().Add(n.o.Timeout))
		c.Write(appendFrame(nil, typeWelcome, welcome{Epoch: known, ID: n.o.ID}.encode()))
		n.o.Logf("replication: refused master %s: its epoch %d is older than %d", h.ID, h.Epoch, known)
		return
	}
	if err := n.setEpochLocked(h.Epoch); err != nil {
		n.mu.Unlock()
		n.fail(err)
		return
	}
	if n.conn != nil {
		n.conn.Close() // the previous master's connection
	}
	n.conn, n.masterID, n.lastContact = c, h.ID, time.Now()
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.conn == c {
			n.conn = nil
		}
		n.mu.Unlock()
	}()

	n.replMu.Lock()
	defer n.replMu.Unlock()
	n.mu.Lock()
	if n.master || n.conn != c { // promoted, or a newer connection came
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	w := &connWriter{c: c, timeout: n.o.Timeout}
	if pos := n.position(); pos != nil {
		r, err := n.offerPosition(c, fr, w, h, *pos)
		if err != nil {
			n.o.Logf("replication: resume from %s: %v", h.ID, err)
			return
		}
		if r.OK {
			err = n.catchUp(c, fr, w, h, *pos, r.LSN)
			n.o.Logf("replication: master %s: %v", h.ID, err)
			return
		}
		n.o.Logf("replication: %s cannot resume us from lsn %d", h.ID, pos.LSN)
	}
	n.o.Logf("replication: replica of %s (epoch %d): resyncing", h.ID, h.Epoch)
	// The store is wiped and reopened (a new journal preallocates its
	// first segment) before the welcome, so that the master's snapshot
	// and stream never wait on it.
	if err := n.resetStore(); err != nil {
		return
	}
	if err := w.send(typeWelcome, welcome{OK: true, Epoch: h.Epoch, ID: n.o.ID}.encode()); err != nil {
		return
	}
	lsn, size, err := n.resync(c, fr, w)
	if err != nil {
		n.o.Logf("replication: resync from %s: %v", h.ID, err)
		return
	}
	n.o.Logf("replication: resynced from %s at lsn %d; in sync", h.ID, lsn)
	pos := position{Epoch: h.Epoch, ID: h.ID, LSN: lsn, Next: n.nextSeq()}
	n.savePositions(pos, pos)
	n.setPosition(pos)
	n.o.joined(h.ID, "full", size)
	if err := w.send(typeAck, encodeLSN(lsn)); err != nil {
		return
	}
	err = n.follow(c, fr, w, h, lsn, 0)
	n.o.Logf("replication: master %s: %v", h.ID, err)
}

// offerPosition welcomes the master with the node's position and reads
// whether it resumes from there.
func (n *Node) offerPosition(c net.Conn, fr *frameReader, w *connWriter, h hello, pos position) (resume, error) {
	if err := w.send(typeWelcome, welcome{OK: true, Epoch: h.Epoch, ID: n.o.ID, Pos: &pos}.encode()); err != nil {
		return resume{}, err
	}
	typ, p, err := readFrame(c, fr, n.o.Timeout)
	if err != nil {
		return resume{}, err
	}
	if typ != typeResume {
		return resume{}, fmt.Errorf("%w: frame type %d instead of resume", ErrProtocol, typ)
	}
	r, err := decodeResume(p)
	if err == nil && r.OK && r.LSN < pos.LSN {
		err = fmt.Errorf("%w: resume to lsn %d, before our %d", ErrProtocol, r.LSN, pos.LSN)
	}
	return r, err
}

// catchUp applies the groups after pos up to lsn, then follows the
// master. Until it has them all the store is marked as resyncing, so a
// node stopped half-way is never master.
func (n *Node) catchUp(c net.Conn, fr *frameReader, w *connWriter, h hello, pos position, lsn uint64) error {
	n.o.Logf("replication: replica of %s (epoch %d): resuming at lsn %d, %d batches to catch up", h.ID, h.Epoch, pos.LSN, lsn-pos.LSN)
	if lsn > pos.LSN {
		n.mu.Lock()
		n.complete = false
		n.mu.Unlock()
		if err := writeFileSync(n.markerPath(), []byte("catching up\n")); err != nil {
			n.fail(fmt.Errorf("replication: mark resync: %w", err))
			return err
		}
	}
	n.mu.Lock()
	n.received, n.applied = pos.LSN, pos.LSN
	n.mu.Unlock()
	if err := w.send(typeAck, encodeLSN(pos.LSN)); err != nil {
		return err
	}
	return n.follow(c, fr, w, h, pos.LSN, lsn)
}

// nextSeq is the store's next seq.
func (n *Node) nextSeq() uint64 {
	n.mu.Lock()
	st := n.st
	n.mu.Unlock()
	return st.(store.Applier).NextSeq()
}

// resynced clears the resync mark: the store is whole again.
func (n *Node) resynced() error {
	if err := os.Remove(n.markerPath()); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		n.fail(fmt.Errorf("replication: clear resync mark: %w", err))
		return err
	}
	if err := vfs.Default.SyncDir(n.o.Dir); err != nil {
		n.fail(fmt.Errorf("replication: clear resync mark: %w", err))
		return err
	}
	n.mu.Lock()
	n.complete = true
	n.mu.Unlock()
	return nil
}

// connWriter serialises writes to a connection, each with a deadline.
type connWriter struct {
	mu      sync.Mutex
	c       net.Conn
	timeout time.Duration
}

// send writes one frame.
func (w *connWriter) send(typ byte, p []byte) error { return w.write(appendFrame(nil, typ, p)) }

// write writes encoded frames, in order, under one deadline.
func (w *connWriter) write(frames ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	for _, f := range frames {
		if _, err := w.c.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// resetStore discards the node's store and opens it anew, empty. The
// resync marker says the copy is partial from now until resync has
// applied a whole snapshot: a node that crashes meanwhile is never
// eligible as master until a master resyncs it whole.
func (n *Node) resetStore() error {
	if err := n.dropPosition(); err != nil {
		n.fail(fmt.Errorf("replication: drop position: %w", err))
		return err
	}
	n.forget()
	n.mu.Lock()
	n.complete = false
	n.received, n.applied = 0, 0
	st := n.st
	n.st = nil
	n.mu.Unlock()
	if err := writeFileSync(n.markerPath(), []byte("resync in progress\n")); err != nil {
		n.fail(fmt.Errorf("replication: mark resync: %w", err))
		return err
	}
	if st != nil {
		if err := st.Close(); err != nil {
			n.o.Logf("replication: close store before resync: %v", err)
		}
	}
	if err := os.RemoveAll(n.storeDir()); err != nil {
		n.fail(fmt.Errorf("replication: wipe %s: %w", n.storeDir(), err))
		return err
	}
	st, err := n.o.OpenStore(n.storeDir(), n.tap)
	if err != nil {
		n.fail(fmt.Errorf("replication: reopen store for resync: %w", err))
		return err
	}
	n.mu.Lock()
	n.st = st
	n.mu.Unlock()
	return nil
}

// resync applies the master's snapshot to the freshly reset store and
// returns its LSN and payload bytes; it acknowledges LSN 0 after each chunk (progress, not
// yet in sync) so that a long snapshot does not look like a dead link.
func (n *Node) resync(c net.Conn, fr *frameReader, w *connWriter) (uint64, int64, error) {
	n.mu.Lock()
	st := n.st
	n.mu.Unlock()
	a := st.(store.Applier)
	var lsn uint64
	var size int64
	first := true
	for {
		typ, p, err := readFrame(c, fr, n.o.Timeout)
		if err != nil {
			return 0, 0, err
		}
		if typ == typePing {
			continue
		}
		if typ != typeSnapshot {
			return 0, 0, fmt.Errorf("%w: frame type %d during a snapshot", ErrProtocol, typ)
		}
		s, err := decodeSnapshot(p)
		if err != nil {
			return 0, 0, err
		}
		if !first && s.LSN != lsn {
			return 0, 0, fmt.Errorf("%w: snapshot chunk at lsn %d, then %d", ErrProtocol, lsn, s.LSN)
		}
		first, lsn = false, s.LSN
		size += int64(len(p))
		var next uint64
		if s.Final {
			next = s.Next
		}
		var bs []*store.Batch
		if len(s.Batch.Adds) > 0 || len(s.Batch.Acks) > 0 {
			bs = []*store.Batch{s.Batch}
		}
		if len(bs) > 0 || next > 0 {
			if err := a.Apply(context.Background(), bs, next); err != nil {
				if errors.Is(err, store.ErrFailed) {
					n.fail(err)
				}
				return 0, 0, fmt.Errorf("apply snapshot: %w", err)
			}
		}
		n.touch()
		if s.Final {
			break
		}
		if err := w.send(typeAck, encodeLSN(0)); err != nil {
			return 0, 0, err
		}
	}
	if err := n.resynced(); err != nil {
		return 0, 0, err
	}
	n.mu.Lock()
	n.received, n.applied = lsn, lsn
	n.mu.Unlock()
	return lsn, size, nil
}

func (n *Node) touch() {
	n.mu.Lock()
	n.lastContact = time.Now()
	n.mu.Unlock()
}

// follow applies the master's groups from lsn on: the reader acknowledges
// a group once received (--replica-ack received) and hands it to the
// applier, which applies what has arrived in one store Apply (one fsync),
// acknowledges it (fsynced), records the node's position and remembers
// the groups. Catching up from a position, the resync mark is cleared
// once upto is applied (0: no catch-up); an apply that fails drops the
// position, so that the next master copies the store whole.
func (n *Node) follow(c net.Conn, fr *frameReader, w *connWriter, h hello, lsn, upto uint64) error {
	type item struct {
		last uint64
		bs   []*store.Batch
		hist []histEntry
		tail int64 // payload bytes of the catch-up's groups
	}
	work := make(chan item, 1024)
	applyErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.mu.Lock()
		a := n.st.(store.Applier)
		n.mu.Unlock()
		caught := upto == 0
		if !caught && upto <= lsn {
			if caught = n.resynced() == nil; caught {
				n.o.joined(h.ID, "tail", 0)
			}
		}
		var tail int64
		for it := range work {
			bs, last, hist := it.bs, it.last, it.hist
			tail += it.tail
		more:
			for {
				select {
				case it2, ok := <-work:
					if !ok {
						break more
					}
					bs, last, hist = append(bs, it2.bs...), it2.last, append(hist, it2.hist...)
					tail += it2.tail
				default:
					break more
				}
			}
			prev := position{}
			if p := n.position(); p != nil {
				prev = *p
			}
			n.savePositions(prev, afterApply(h.Epoch, h.ID, last, a.NextSeq(), bs))
			if err := a.Apply(context.Background(), bs, 0); err != nil {
				err = fmt.Errorf("apply lsn up to %d: %w", last, err)
				if errors.Is(err, store.ErrFailed) {
					n.fail(err)
				}
				if derr := n.dropPosition(); derr != nil {
					n.fail(fmt.Errorf("replication: drop position: %w", derr))
				}
				applyErr <- err
				c.Close()
				for range work {
				}
				return
			}
			n.mu.Lock()
			n.applied = last
			n.mu.Unlock()
			if n.o.Ack == Fsynced {
				w.send(typeAck, encodeLSN(last))
			}
			n.setPosition(position{Epoch: h.Epoch, ID: h.ID, LSN: last, Next: a.NextSeq()})
			for _, e := range hist {
				n.remember(e)
			}
			if !caught && last >= upto {
				if caught = n.resynced() == nil; caught {
					n.o.Logf("replication: caught up with %s at lsn %d", h.ID, last)
					n.o.joined(h.ID, "tail", tail)
				}
			}
		}
	}()
	defer func() {
		close(work)
		wg.Wait()
	}()
	received := lsn
	for {
		typ, p, err := readFrame(c, fr, n.o.Timeout)
		if err != nil {
			select {
			case aerr := <-applyErr:
				return aerr
			default:
			}
			return err
		}
		n.touch()
		switch typ {
		case typeGroup:
			g, err := decodeGroup(p)
			if err != nil {
				return err
			}
			if g.First != received+1 {
				return fmt.Errorf("%w: group at lsn %d, expected %d", ErrProtocol, g.First, received+1)
			}
			received += uint64(len(g.Batches))
			n.mu.Lock()
			n.received = received
			n.mu.Unlock()
			frame := appendFrame(nil, typeGroup, p)
			it := item{last: received, bs: g.Batches,
				hist: []histEntry{{epoch: h.Epoch, id: h.ID, first: g.First, last: received, frame: frame}}}
			if received <= upto {
				it.tail = int64(len(p))
			}
			work <- it
			if n.o.Ack == Received {
				if err := w.send(typeAck, encodeLSN(received)); err != nil {
					return err
				}
			}
		case typePing:
			at := received
			if n.o.Ack == Fsynced {
				n.mu.Lock()
				at = n.applied
				n.mu.Unlock()
			}
			if err := w.send(typeAck, encodeLSN(at)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: frame type %d from a master", ErrProtocol, typ)
		}
	}
}
