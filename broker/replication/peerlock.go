package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/role"
)

// PeerLock is the master lock of a group without a witness: a node that
// has heard from no master for TTL, whose copy is whole, and that ranks
// first among the nodes it can reach (no master among them; highest
// epoch, then most seqs, then smallest id) makes itself master with the
// next epoch. Nothing stops the two sides of a partition from each
// electing one: that is the split-brain risk a witness removes. With
// --min-replicas 1 or more neither side can acknowledge alone; with 0
// both do. When the two meet, the older epoch (or on a tie the larger id)
// is stale: its lock is lost and it fails stop.
type PeerLock struct {
	n   *Node
	ttl time.Duration

	mu       sync.Mutex
	epoch    int64
	state    string
	reason   string
	holder   string
	lost     chan struct{}
	lostOnce sync.Once
}

var _ role.Lock = (*PeerLock)(nil)

// NewPeerLock returns the peer lock of n, taking over after ttl without a
// master.
func NewPeerLock(n *Node, ttl time.Duration) *PeerLock {
	if ttl <= 0 {
		ttl = role.DefaultTTL
	}
	l := &PeerLock{n: n, ttl: ttl, state: "standby", lost: make(chan struct{})}
	n.onStale(func(reason string) { l.lose(reason) })
	return l
}

func (l *PeerLock) lose(reason string) {
	l.lostOnce.Do(func() {
		l.mu.Lock()
		l.state, l.reason = "lost", reason
		l.mu.Unlock()
		close(l.lost)
	})
}

// Acquire implements role.Lock.
func (l *PeerLock) Acquire(ctx context.Context) (int64, error) {
	start := time.Now()
	poll := max(l.ttl/10, 20*time.Millisecond)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-l.n.fatal:
			return 0, l.n.fatalE
		case <-l.lost:
			return 0, errors.New("replication: released while standing by")
		case <-t.C:
		}
		last := l.n.contact()
		if last.Before(start) {
			last = start
		}
		if time.Since(last) < l.ttl || !l.n.eligible() {
			continue
		}
		me := l.n.state()
		first, holder := l.ranksFirst(ctx, me)
		l.mu.Lock()
		l.holder = holder
		l.mu.Unlock()
		if !first {
			continue
		}
		epoch := me.Epoch + 1
		if err := l.n.promote(epoch); err != nil {
			return 0, err
		}
		l.mu.Lock()
		l.epoch, l.state, l.holder = int64(epoch), "master", l.n.o.ID
		l.mu.Unlock()
		return int64(epoch), nil
	}
}

// ranksFirst probes every peer: this node ranks first when none it
// reaches is master and no eligible one outranks it.
func (l *PeerLock) ranksFirst(ctx context.Context, me nodeState) (bool, string) {
	for _, addr := range l.n.o.Peers {
		s, err := probe(ctx, l.n.o.Transport, addr, me, l.n.o.Timeout)
		if err != nil {
			continue // unreachable: down, or across a partition
		}
		if s.Role == roleMaster {
			return false, s.ID
		}
		if s.Eligible && outranks(s, me) {
			return false, ""
		}
	}
	return true, ""
}

func outranks(a, b nodeState) bool {
	if a.Epoch != b.Epoch {
		return a.Epoch > b.Epoch
	}
	if a.NextSeq != b.NextSeq {
		return a.NextSeq > b.NextSeq
	}
	return a.ID < b.ID
}

// probe asks the node at addr for its state.
func probe(ctx context.Context, tr Transport, addr string, me nodeState, timeout time.Duration) (nodeState, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := tr.Dial(ctx, addr)
	if err != nil {
		return nodeState{}, err
	}
	defer c.Close()
	w := &connWriter{c: c, timeout: timeout}
	if err := w.send(typeProbe, me.encode()); err != nil {
		return nodeState{}, err
	}
	typ, p, err := readFrame(c, newFrameReader(c), timeout)
	if err != nil {
		return nodeState{}, err
	}
	if typ != typeStatus {
		return nodeState{}, fmt.Errorf("%w: frame type %d answering a probe", ErrProtocol, typ)
	}
	return decodeNodeState(p)
}

// Held implements role.Lock.
func (l *PeerLock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state == "master"
}

// Lost implements role.Lock.
func (l *PeerLock) Lost() <-chan struct{} { return l.lost }

// Epoch implements role.Lock.
func (l *PeerLock) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Release implements role.Lock: a standby takes over once it has heard
// from no master for the TTL.
func (l *PeerLock) Release() error {
	l.lose("released")
	return nil
}

// Status implements role.Lock.
func (l *PeerLock) Status() role.Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	holder := l.holder
	if holder == "" {
		l.n.mu.Lock()
		holder = l.n.masterID
		l.n.mu.Unlock()
	}
	return role.Status{Role: l.state, Owner: l.n.o.ID, Holder: holder, Epoch: l.epoch, Reason: l.reason}
}
