package replication

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Resuming a replica from its position instead of copying the master's
// store whole.
//
// LSNs go on across epochs: a new master numbers its groups on from the
// LSN its store had reached as a replica. Every node remembers its
// recent groups (history, at most MaxLag bytes of frames): as a master
// those it wrote, as a replica those it applied, each with the term that
// streamed it (the master's epoch and id). A replica writes its position
// (the last LSN applied, that term, and its store's next seq) to
// replication.position after each apply and sends it in its welcome. The
// master resumes it when its history holds a group of that term ending
// at that LSN (or the position is the start of the master's own term)
// and every group since, with no gap: the replica's log is then a prefix
// of the master's, as in Raft's log matching (a term has one log), and
// only the groups after it are sent. Otherwise (a position beyond the
// master's, of a term it does not know, not on a group boundary, or
// older than its history) the replica is copied whole, as before.
//
// The position file is written before each apply, not synced, with two
// positions: the one before the apply (prev) and the one it leads to
// (cur), each with the store's next seq then. Read back, cur holds when
// the store's next seq is cur's and the apply's last batch had adds (the
// journal keeps a prefix of what was written, so the whole apply is in
// it); else prev holds when the next seq is prev's; else, or when the
// file is torn (its CRC fails), there is no position. A position so
// never claims what the store lacks, but it may lag it by batches
// without adds. Then the master resends groups the replica already
// applied; the first one fails the journal's checks (an add below its
// next seq, an ack of a message already gone), the replica drops its
// position and the next connection copies it whole. While it catches up
// the replica is marked as resyncing, so it is never master with a
// half-applied tail. A node drops its position (synced)
// when it becomes master: a returning ex-master, whose store may hold
// groups nobody replicated, is always copied whole.

// histEntry is one remembered group: its LSNs, its term and its frame.
type histEntry struct {
	epoch       uint64
	id          string
	first, last uint64
	frame       []byte
}

// remember appends a group to the history, forgetting the oldest beyond
// MaxLag bytes.
func (n *Node) remember(e histEntry) {
	n.histMu.Lock()
	defer n.histMu.Unlock()
	n.hist = append(n.hist, e)
	n.histBytes += int64(len(e.frame))
	drop := 0
	for n.histBytes > n.o.MaxLag && drop < len(n.hist)-1 {
		n.histBytes -= int64(len(n.hist[drop].frame))
		drop++
	}
	if drop > 0 {
		n.hist = append([]histEntry(nil), n.hist[drop:]...)
	}
}

// forget empties the history (the store was wiped).
func (n *Node) forget() {
	n.histMu.Lock()
	n.hist, n.histBytes = nil, 0
	n.histMu.Unlock()
}

// tail returns the frames of the groups after p, up to cur, when the
// history proves p a prefix of this master's log (term epoch, id, from
// LSN base); else why not.
func (n *Node) tail(p position, epoch uint64, id string, base, cur uint64) (frames [][]byte, size int64, why string) {
	if p.LSN > cur {
		return nil, 0, fmt.Sprintf("its lsn %d is beyond ours, %d", p.LSN, cur)
	}
	n.histMu.Lock()
	defer n.histMu.Unlock()
	from := -1
	if p.Epoch == epoch && p.ID == id && p.LSN == base {
		// The start of this master's term: every group of the term.
		from = len(n.hist)
		for i, e := range n.hist {
			if e.epoch == epoch && e.id == id {
				from = i
				break
			}
		}
	} else {
		for i, e := range n.hist {
			if e.last == p.LSN && e.epoch == p.Epoch && e.id == p.ID {
				from = i + 1
				break
			}
		}
	}
	if from < 0 {
		kept := "none"
		if len(n.hist) > 0 {
			kept = fmt.Sprintf("lsn %d to %d", n.hist[0].first, n.hist[len(n.hist)-1].last)
		}
		return nil, 0, fmt.Sprintf("lsn %d of epoch %d (%s) is not in this master's history (kept: %s)", p.LSN, p.Epoch, p.ID, kept)
	}
	at := p.LSN
	for _, e := range n.hist[from:] {
		if e.first != at+1 {
			return nil, 0, fmt.Sprintf("history gap after lsn %d", at)
		}
		frames = append(frames, e.frame)
		size += int64(len(e.frame))
		at = e.last
	}
	if at != cur {
		return nil, 0, fmt.Sprintf("history ends at lsn %d, not %d", at, cur)
	}
	return frames, size, ""
}

func (n *Node) positionPath() string { return filepath.Join(n.o.Dir, "replication.position") }

// loadPosition reads the position file back (see above); a torn one, or
// one neither of whose positions has the store's next seq, is no
// position.
func (n *Node) loadPosition(st store.Store) {
	b, err := os.ReadFile(n.positionPath())
	if errors.Is(err, iofs.ErrNotExist) {
		return
	}
	var prev, cur position
	if err == nil {
		var typ byte
		var p []byte
		typ, p, err = newFrameReader(bytes.NewReader(b)).next()
		if err == nil && typ != typePosition {
			err = fmt.Errorf("%w: frame type %d", ErrCorrupt, typ)
		}
		if err == nil {
			prev, cur, err = decodePositions(p)
		}
	}
	var pos position
	if err == nil {
		next := st.(store.Applier).NextSeq()
		switch {
		case cur.Next != 0 && cur.Next == next:
			pos = cur
		case prev.Next == next:
			pos = prev
		default:
			err = fmt.Errorf("next seq %d or %d, the store's is %d", prev.Next, cur.Next, next)
		}
	}
	if err != nil {
		n.o.Logf("replication: %s: %v: no position, the next master copies this store whole", n.positionPath(), err)
		return
	}
	n.pos = &pos
	n.received, n.applied = pos.LSN, pos.LSN
	n.o.Logf("replication: at lsn %d of epoch %d (%s)", pos.LSN, pos.Epoch, pos.ID)
}

// position returns the node's position, nil when unknown.
func (n *Node) position() *position {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pos == nil {
		return nil
	}
	p := *n.pos
	return &p
}

// setPosition records p as the node's position in memory.
func (n *Node) setPosition(p position) {
	n.mu.Lock()
	n.pos = &p
	n.mu.Unlock()
}

// savePositions writes the position before an apply (prev) and the one
// it leads to (cur; Next 0 when the apply cannot be told from its seqs),
// in place, not synced (see above).
func (n *Node) savePositions(prev, cur position) {
	f, err := os.OpenFile(n.positionPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.WriteAt(appendFrame(nil, typePosition, cur.append(prev.append(nil))), 0)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		n.o.Logf("replication: record position: %v", err)
	}
}

// afterApply is the position bs lead to from the store's next seq: Next
// is 0 when the last batch has no adds (its being applied would not
// show in the next seq).
func afterApply(epoch uint64, id string, last, next uint64, bs []*store.Batch) position {
	p := position{Epoch: epoch, ID: id, LSN: last}
	if len(bs) > 0 && len(bs[len(bs)-1].Adds) > 0 {
		adds := bs[len(bs)-1].Adds
		p.Next = max(next, adds[len(adds)-1].Seq+1)
	}
	return p
}

// dropPosition forgets the node's position, durably: the next master
// copies its store whole.
func (n *Node) dropPosition() error {
	n.mu.Lock()
	n.pos = nil
	n.mu.Unlock()
	if err := os.Remove(n.positionPath()); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		return err
	}
	return vfs.Default.SyncDir(n.o.Dir)
}
