package server

import (
	"sync"

	"github.com/lossbench/lossbench/broker/store"
)

// acker writes acknowledgements to the store in groups: acks arriving while
// one Write is in flight go together in the next. Every Seq reaches it
// exactly once (a delivery is settled once, under Broker.mu) and only after
// its add was durable (messages are dispatched only after their Write).
type acker struct {
	b       *Broker
	mu      sync.Mutex
	seqs    []uint64
	waiters []func(error)
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

// add queues seqs for acking; fn, if not nil, runs after they are durable
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

func (a *acker) run() {
	defer close(a.done)
	var seqs []uint64
	var waiters []func(error)
	for {
		stop := false
		select {
		case <-a.kick:
		case <-a.quit:
			stop = true
		}
		a.mu.Lock()
		seqs, a.seqs = a.seqs, nil // the store may keep the slice until Write returns
		waiters, a.waiters = a.waiters, waiters[:0]
		a.mu.Unlock()
		var err error
		if len(seqs) > 0 {
			if err = a.b.Err(); err == nil {
				err = a.b.st.Write(a.b.ctx, &store.Batch{Acks: seqs})
				if err != nil {
					a.b.fail(err)
					err = a.b.Err()
				} else {
					a.b.m.storeAcks.Add(uint64(len(seqs)))
				}
			}
		}
		for i, fn := range waiters {
			fn(err)
			waiters[i] = nil
		}
		if stop {
			return
		}
	}
}

// stop writes what is pending and ends the acker.
func (a *acker) stop() {
	a.once.Do(func() { close(a.quit) })
	<-a.done
}
