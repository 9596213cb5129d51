package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/role"
)

// Witness is the third party of a replicated pair (refbroker witness),
// in a third site: it grants the master role, one epoch at a time, to
// one node, which keeps it by renewing within the TTL and reports its
// in-sync replicas. After the holder's TTL runs out without a renewal,
// the witness grants the next epoch only to a node that holds every
// acknowledged message: one the last holder reported in sync, or the last
// holder itself. A partitioned pair so has at most one master: the side
// that reaches the witness. The witness keeps its state in memory: a
// restarted witness waits one TTL before granting, so that a live
// master's renewal claims its grant back first.
type Witness struct {
	ttl  time.Duration
	logf func(string, ...any)

	mu      sync.Mutex
	started time.Time
	epoch   uint64
	holder  string
	renewed time.Time
	free    bool // released, or never granted
	inSync  []string
}

// NewWitness returns a witness whose grants last ttl without renewal.
func NewWitness(ttl time.Duration, logf func(string, ...any)) *Witness {
	if ttl <= 0 {
		ttl = role.DefaultTTL
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Witness{ttl: ttl, logf: logf, started: time.Now(), free: true}
}

// Serve answers nodes on ln until it is closed.
func (w *Witness) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go w.serveConn(c)
	}
}

func (w *Witness) serveConn(c net.Conn) {
	defer c.Close()
	fr := newFrameReader(c)
	for {
		typ, p, err := readFrame(c, fr, time.Minute)
		if err != nil {
			return
		}
		r, err := decodeWitnessReq(p)
		if err != nil {
			w.logf("witness: %v from %s", err, c.RemoteAddr())
			return
		}
		var g grant
		switch typ {
		case typeAcquire:
			g = w.acquire(r)
		case typeRenew:
			g = w.renew(r)
		case typeRelease:
			g = w.release(r)
		default:
			w.logf("witness: %v: frame type %d from %s", ErrProtocol, typ, c.RemoteAddr())
			return
		}
		g.TTLms = uint64(w.ttl.Milliseconds())
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(appendFrame(nil, typeGrant, g.encode())); err != nil {
			return
		}
	}
}

func (w *Witness) acquire(r witnessReq) grant {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if now.Sub(w.started) < w.ttl && w.epoch == 0 && r.Epoch > 0 {
		// A restarted witness: a live master may still hold a grant.
		return grant{Epoch: w.epoch, Holder: w.holder, Reason: "witness just started"}
	}
	if !w.free && now.Sub(w.renewed) < w.ttl {
		return grant{Epoch: w.epoch, Holder: w.holder, Reason: "held"}
	}
	if w.epoch > 0 && r.Epoch < w.epoch {
		// A copy that never saw the last epoch (a new or wiped disk)
		// cannot hold what that epoch acknowledged.
		return grant{Epoch: w.epoch, Holder: w.holder, Reason: fmt.Sprintf("%s knows epoch %d, the last was %d", r.ID, r.Epoch, w.epoch)}
	}
	if w.epoch > 0 && r.ID != w.holder && !slices.Contains(w.inSync, r.ID) {
		return grant{Epoch: w.epoch, Holder: w.holder, Reason: fmt.Sprintf("not in sync with %s (epoch %d): in sync were %v", w.holder, w.epoch, w.inSync)}
	}
	w.epoch = max(w.epoch, r.Epoch) + 1
	prev := w.holder
	w.holder, w.renewed, w.free, w.inSync = r.ID, now, false, nil
	w.logf("witness: epoch %d granted to %s (was %q)", w.epoch, r.ID, prev)
	return grant{OK: true, Epoch: w.epoch, Holder: r.ID}
}

func (w *Witness) renew(r witnessReq) grant {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.epoch == 0 && r.Epoch > 0 && now.Sub(w.started) < w.ttl {
		// A restarted witness: the master claims its grant back.
		w.epoch, w.holder, w.free = r.Epoch, r.ID, false
		w.logf("witness: epoch %d claimed back by %s", r.Epoch, r.ID)
	}
	if w.free || r.ID != w.holder || r.Epoch != w.epoch || now.Sub(w.renewed) >= w.ttl {
		return grant{Epoch: w.epoch, Holder: w.holder, Reason: "not the holder"}
	}
	w.renewed, w.inSync = now, append([]string(nil), r.InSync...)
	return grant{OK: true, Epoch: w.epoch, Holder: w.holder}
}

func (w *Witness) release(r witnessReq) grant {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.ID == w.holder && r.Epoch == w.epoch && !w.free {
		w.free = true
		w.logf("witness: epoch %d released by %s", w.epoch, r.ID)
		return grant{OK: true, Epoch: w.epoch, Holder: w.holder}
	}
	return grant{Epoch: w.epoch, Holder: w.holder, Reason: "not the holder"}
}

// WitnessStatus is the witness's state as its /status shows it.
type WitnessStatus struct {
	Epoch  uint64   `json:"epoch"`
	Holder string   `json:"holder"`
	Free   bool     `json:"free"`
	InSync []string `json:"in_sync"`
	// ValidForMs is how long the holder's grant lasts without a renewal.
	ValidForMs int64 `json:"valid_for_ms"`
}

// Status returns the witness's state.
func (w *Witness) Status() WitnessStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := WitnessStatus{Epoch: w.epoch, Holder: w.holder, Free: w.free, InSync: append([]string{}, w.inSync...)}
	if !w.free {
		st.ValidForMs = max(0, (w.ttl - time.Since(w.renewed)).Milliseconds())
	}
	return st
}

// WitnessLock is a node's master lock held through a witness: a
// role.Term counts the grant from the start of its last renewal and ends
// it Margin early, so the master stops acknowledging before the witness
// can grant the next epoch to a replica.
type WitnessLock struct {
	n    *Node
	addr string
	term *role.Term

	mu     sync.Mutex
	epoch  int64
	holder string
}

var _ role.Lock = (*WitnessLock)(nil)

// NewWitnessLock returns n's standby lock through the witness at addr.
func NewWitnessLock(n *Node, addr string, o role.TermOptions) *WitnessLock {
	l := &WitnessLock{n: n, addr: addr, term: role.NewTerm(o)}
	n.onStale(func(reason string) { l.term.Lose(reason) })
	// The witness grants the next epoch only to a replica the master
	// reported in sync: report one as soon as it catches up, not a
	// --lease-renew later, or losing the master meanwhile leaves no node
	// the witness may promote.
	n.onInSync(l.term.RenewSoon)
	return l
}

// ask sends one request to the witness and reads its grant.
func (l *WitnessLock) ask(ctx context.Context, typ byte, r witnessReq) (grant, error) {
	o := l.term.Options()
	ctx, cancel := context.WithTimeout(ctx, o.TTL)
	defer cancel()
	c, err := l.n.o.Transport.Dial(ctx, l.addr)
	if err != nil {
		return grant{}, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if _, err := c.Write(appendFrame(nil, typ, r.encode())); err != nil {
		return grant{}, err
	}
	t, p, err := newFrameReader(c).next()
	if err != nil {
		return grant{}, err
	}
	if t != typeGrant {
		return grant{}, fmt.Errorf("%w: frame type %d from the witness", ErrProtocol, t)
	}
	g, err := decodeGrant(p)
	if err == nil && time.Duration(g.TTLms)*time.Millisecond < o.TTL {
		err = fmt.Errorf("%w: the witness at %s grants for %v (refbroker witness --lease-ttl), less than this node's --lease-ttl %v: it could grant the next epoch while this master still acknowledges; give the witness a --lease-ttl of at least %v",
			ErrWitnessTTL, l.addr, time.Duration(g.TTLms)*time.Millisecond, o.TTL, o.TTL)
	}
	return g, err
}

// ErrWitnessTTL is a witness whose grants are shorter than the node's
// --lease-ttl: the node refuses to serve under it.
var ErrWitnessTTL = errors.New("replication: witness lease too short")

// Acquire implements role.Lock.
func (l *WitnessLock) Acquire(ctx context.Context) (int64, error) {
	o := l.term.Options()
	t := time.NewTicker(o.Poll * 2)
	defer t.Stop()
	var said string
	for {
		if l.term.Ended() {
			return 0, errors.New("replication: released while standing by")
		}
		if l.n.eligible() && time.Since(l.n.contact()) > o.Renew {
			start := o.Clock.Now()
			g, err := l.ask(ctx, typeAcquire, witnessReq{ID: l.n.o.ID, Epoch: l.n.Epoch()})
			switch {
			case errors.Is(err, ErrWitnessTTL):
				return 0, err
			case err != nil:
				if said != err.Error() {
					l.n.o.Logf("replication: witness %s: %v", l.addr, err)
					said = err.Error()
				}
			case g.OK:
				if err := l.n.promote(g.Epoch); err != nil {
					return 0, err
				}
				l.mu.Lock()
				l.epoch, l.holder = int64(g.Epoch), l.n.o.ID
				l.mu.Unlock()
				if !l.term.Begin(start, l.renew) {
					return 0, errors.New("replication: released while acquiring")
				}
				return int64(g.Epoch), nil
			default:
				l.mu.Lock()
				l.holder = g.Holder
				l.mu.Unlock()
				if said != g.Reason {
					l.n.o.Logf("replication: witness: not master: %s (holder %q, epoch %d)", g.Reason, g.Holder, g.Epoch)
					said = g.Reason
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-l.n.fatal:
			return 0, l.n.fatalE
		case <-t.C:
		}
	}
}

// renew is the term's role.RenewFunc: it also tells the witness which
// replicas are in sync, and once it has, the master waits for each.
func (l *WitnessLock) renew(ctx context.Context, start time.Time) (bool, error) {
	var ids []string
	l.n.mu.Lock()
	m := l.n.m
	l.n.mu.Unlock()
	if m != nil {
		ids = m.inSync()
	}
	g, err := l.ask(ctx, typeRenew, witnessReq{ID: l.n.o.ID, Epoch: uint64(l.Epoch()), InSync: ids})
	if errors.Is(err, ErrWitnessTTL) {
		l.n.o.Logf("replication: %v", err)
		return true, nil // a restarted witness with a shorter TTL: stop now
	}
	if err != nil {
		return false, err
	}
	if !g.OK {
		return true, nil
	}
	if m != nil {
		m.confirm(ids)
	}
	return false, nil
}

// Held implements role.Lock.
func (l *WitnessLock) Held() bool { return l.term.Held() }

// Lost implements role.Lock.
func (l *WitnessLock) Lost() <-chan struct{} { return l.term.Lost() }

// Epoch implements role.Lock.
func (l *WitnessLock) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Release implements role.Lock: the witness may grant the next epoch at
// once.
func (l *WitnessLock) Release() error {
	l.term.Stop()
	epoch := l.Epoch()
	if epoch == 0 {
		return nil
	}
	_, err := l.ask(context.Background(), typeRelease, witnessReq{ID: l.n.o.ID, Epoch: uint64(epoch)})
	return err
}

// Status implements role.Lock. A standby names the master that streams
// to it: that master holds the witness's grant (a replica refuses one of
// an older epoch), and a standby asks the witness only once its master
// has gone silent, so one its master reached first would otherwise name
// no holder for as long as it follows. Without a master streaming to it,
// it names the holder the witness last answered.
func (l *WitnessLock) Status() role.Status {
	following := l.n.following()
	l.mu.Lock()
	st := role.Status{Owner: l.n.o.ID, Holder: l.holder, Epoch: l.epoch}
	l.mu.Unlock()
	if following != "" {
		st.Holder = following
	}
	return l.term.Status(st)
}
