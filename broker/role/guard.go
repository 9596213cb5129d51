package role

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/broker/store"
)

// Holder is what Guard asks a lock.
type Holder interface {
	Held() bool
	Epoch() int64
}

// Guarded is a store that acknowledges writes only while its lock is
// held. It implements store.Store, store.Loader, store.Statser and
// store.Namer (Load fails if the wrapped store is no Loader).
type Guarded struct {
	s store.Store
	l Holder
}

// Guard wraps s so that Write fails with ErrFenced, before writing, when
// l is not held, and after writing when l was lost meanwhile: such a batch
// may be durable but is not acknowledged (a duplicate at worst, never an
// acknowledged loss). Guard checks the local clock; a store that can also
// check the lock where it writes (sqlstore's Fence) should.
func Guard(s store.Store, l Holder) *Guarded { return &Guarded{s: s, l: l} }

// Recover implements store.Store.
func (g *Guarded) Recover(ctx context.Context, fn func(*store.Message) error) error {
	return g.s.Recover(ctx, fn)
}

// Write implements store.Store.
func (g *Guarded) Write(ctx context.Context, b *store.Batch) error {
	if !g.l.Held() {
		return fmt.Errorf("%w: write refused, epoch %d is over", ErrFenced, g.l.Epoch())
	}
	if err := g.s.Write(ctx, b); err != nil {
		return err
	}
	if !g.l.Held() {
		return fmt.Errorf("%w: lock lost during the write (epoch %d); not acknowledged", ErrFenced, g.l.Epoch())
	}
	return nil
}

// Close implements store.Store; it does not release the lock.
func (g *Guarded) Close() error { return g.s.Close() }

// Load implements store.Loader.
func (g *Guarded) Load(ctx context.Context, seq uint64) ([]byte, error) {
	l, ok := g.s.(store.Loader)
	if !ok {
		return nil, fmt.Errorf("role: %T cannot load bodies", g.s)
	}
	return l.Load(ctx, seq)
}

// Stats implements store.Statser: the wrapped store's, plus lease_master
// (1 while held) and lease_epoch.
func (g *Guarded) Stats() map[string]float64 {
	st := map[string]float64{}
	if s, ok := g.s.(store.Statser); ok {
		for k, v := range s.Stats() {
			st[k] = v
		}
	}
	st["lease_master"] = 0
	if g.l.Held() {
		st["lease_master"] = 1
	}
	st["lease_epoch"] = float64(g.l.Epoch())
	return st
}

// Name implements store.Namer.
func (g *Guarded) Name() string {
	if n, ok := g.s.(store.Namer); ok {
		return n.Name()
	}
	return "store"
}
