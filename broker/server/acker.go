package server

import (
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// ackDelay is how long acks wait for a SEND batch to carry them before
// the acker writes them on its own. An ack need not be durable before the
// next delivery, and riding along with adds saves the store a sync.
const ackDelay = 10 * time.Millisecond

// ackFlushCount makes the acker write at once when this many are pending.
const ackFlushCount = 4096

// acker writes acknowledgements to the store in groups. Acks wait briefly
// so the next SEND batch can carry them (steal); the rest it writes
// itself. Every Seq reaches it exactly once (a delivery is settled once,
// under Broker.mu) and only after its add was durable (messages are
// dispatched only after their Write).
type acker struct {
	b       *Broker
	mu      sync.Mutex
	seqs    []uint64
	waiters []func(error)
	stolen  uint64 // counts steals, so the acker sees a batch carried its acks
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newAcker(b *Broker) *acker {
	a := &acker{b: b, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// add queues seqs for acking; fn, if not nil, runs once they are durable
// (err nil) or failed.
func (a *acker) add(seqs []uint64, fn func(error)) {
	a.mu.Lock()
	a.seqs = append(a.seqs, seqs...)
	if fn != nil {
		a.waiters = append(a.waiters, fn)
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// steal takes the pending acks for a batch the caller is about to write;
// the caller must run the waiters with that Write's outcome.
func (a *acker) steal() ([]uint64, []func(error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seqs, waiters := a.seqs, a.waiters
	a.seqs, a.waiters = nil, nil // the store may keep the slice until Write returns
	if len(seqs) > 0 {
		a.stolen++
	}
	return seqs, waiters
}

// state returns how many acks are pending and the steal count.
func (a *acker) state() (int, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs), a.stolen
}

func (a *acker) run() {
	defer close(a.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		stop := false
		select {
		case <-a.kick:
			// Wait while SEND batches keep carrying the acks; write them
			// here only after ackDelay without a steal, or when many wait.
			for !stop {
				n, gen := a.state()
				if n == 0 || n >= ackFlushCount {
					break
				}
				timer.Reset(ackDelay)
				select {
				case <-timer.C:
				case <-a.quit:
					stop = true
				}
				if _, now := a.state(); now == gen {
					break
				}
			}
		case <-a.quit:
			stop = true
		}
		seqs, waiters := a.steal()
		var err error
		if len(seqs) > 0 {
			err = a.b.writeAcks(seqs, len(waiters) == 0)
		}
		for _, fn := range waiters {
			fn(err)
		}
		if stop {
			return
		}
	}
}

// writeAcks writes an ack-only batch, failing the broker on error. With
// lazy set (no client waits for a RECEIPT of these acks) a store that
// implements store.LazyAcker takes them without a sync of their own: they
// ride on its next sync. Safe because an ack that a crash loses only makes
// its message come back, a duplicate the client may see anyway (the
// broker promises at-least-once), never a loss.
func (b *Broker) writeAcks(seqs []uint64, lazy bool) error {
	if err := b.Err(); err != nil {
		return err
	}
	var err error
	if la, ok := b.st.(store.LazyAcker); ok && lazy {
		err = la.WriteAcksLazy(b.ctx, seqs)
	} else {
		err = b.st.Write(b.ctx, &store.Batch{Acks: seqs})
	}
	if err != nil {
		b.fail(err)
		return b.Err()
	}
	b.m.storeAcks.Add(uint64(len(seqs)))
	return nil
}

// stop writes what is pending and ends the acker.
func (a *acker) stop() {
	a.once.Do(func() { close(a.quit) })
	<-a.done
}
