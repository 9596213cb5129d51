// Package memstore is the non-persistent store: it keeps unacknowledged
// messages in memory only, so a broker crash loses them. It is the baseline
// the loss checker must catch losing messages, and the in-memory fake other
// packages' tests use.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/lossbench/lossbench/broker/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	next    uint64
	live    map[uint64]*store.Message
	closed  bool
	writes  uint64
	written uint64
}

// New returns an empty memory store.
func New() *Store {
	return &Store{next: 1, live: make(map[uint64]*store.Message)}
}

// Name implements store.Namer.
func (s *Store) Name() string { return "memory" }

// Recover implements store.Store; a fresh memory store has nothing to replay,
// but a store that was written to before replays its live messages.
func (s *Store) Recover(ctx context.Context, fn func(*store.Message) error) error {
	s.mu.Lock()
	msgs := make([]*store.Message, 0, len(s.live))
	for _, m := range s.live {
		msgs = append(msgs, m)
	}
	s.mu.Unlock()
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].Seq < msgs[j].Seq })
	for _, m := range msgs {
		if err := fn(clone(m)); err != nil {
			return err
		}
	}
	return nil
}

// Write implements store.Store.
func (s *Store) Write(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	return s.applyLocked(b, false)
}

// applyLocked checks b and applies it whole, or nothing of it. Unless
// keep, its adds get the next seqs; with keep they keep theirs, which
// must increase above every seq so far (Apply).
func (s *Store) applyLocked(b *store.Batch, keep bool) error {
	if err := store.CheckAcks("memstore", b.Acks, s.live); err != nil {
		return err
	}
	if keep {
		want := s.next
		for _, m := range b.Adds {
			if m.Seq < want {
				return fmt.Errorf("memstore: applied sequence number %d not above %d", m.Seq, want-1)
			}
			want = m.Seq + 1
		}
	}
	for _, m := range b.Adds {
		if !keep {
			m.Seq = s.next
		}
		s.next = m.Seq + 1
		m.Size = len(m.Body)
		s.live[m.Seq] = clone(m)
		s.written += uint64(m.Size)
	}
	for _, seq := range b.Acks {
		delete(s.live, seq)
	}
	s.writes++
	return nil
}

// Load implements store.Loader.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.live[seq]
	if !ok {
		return nil, fmt.Errorf("memstore: load of unknown message %d", seq)
	}
	return append([]byte(nil), m.Body...), nil
}

// Stats implements store.Statser.
func (s *Store) Stats() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]float64{
		"writes_total":        float64(s.writes),
		"bytes_written_total": float64(s.written),
		"live_messages":       float64(len(s.live)),
	}
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func clone(m *store.Message) *store.Message {
	c := *m
	c.Headers = append([]store.Header(nil), m.Headers...)
	c.Body = append([]byte(nil), m.Body...)
	return &c
}

var _ store.Applier = (*Store)(nil)

// Apply implements store.Applier.
func (s *Store) Apply(ctx context.Context, bs []*store.Batch, next uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	for _, b := range bs {
		if err := s.applyLocked(b, true); err != nil {
			return err
		}
	}
	s.next = max(s.next, next)
	return nil
}

// NextSeq implements store.Applier.
func (s *Store) NextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}
