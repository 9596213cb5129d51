// Package faultstore wraps a store.Store to fail its writes on demand, so
// tests can check that the broker fails stop. It injects by wrapping the
// interface, never by flags inside a real store.
package faultstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lossbench/lossbench/broker/store"
)

// ErrInjected is the error a Store returns once it fails.
var ErrInjected = errors.New("faultstore: injected write failure")

// Store passes calls to an inner store until FailAfter writes succeeded;
// every later Write returns ErrInjected without reaching the inner store.
type Store struct {
	inner store.Store
	mu    sync.Mutex
	left  int // successful writes still allowed; < 0: never fail
	fails int
}

// New wraps inner so that writes after the first failAfter fail; a
// negative failAfter never fails until Fail is called.
func New(inner store.Store, failAfter int) *Store {
	return &Store{inner: inner, left: failAfter}
}

// Fail makes every later Write fail.
func (s *Store) Fail() {
	s.mu.Lock()
	s.left = 0
	s.mu.Unlock()
}

// Failures returns how many writes were refused.
func (s *Store) Failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fails
}

// Recover implements store.Store.
func (s *Store) Recover(ctx context.Context, fn func(*store.Message) error) error {
	return s.inner.Recover(ctx, fn)
}

// Write implements store.Store.
func (s *Store) Write(ctx context.Context, b *store.Batch) error {
	s.mu.Lock()
	if s.left == 0 {
		s.fails++
		s.mu.Unlock()
		return fmt.Errorf("write: %w", ErrInjected)
	}
	if s.left > 0 {
		s.left--
	}
	s.mu.Unlock()
	return s.inner.Write(ctx, b)
}

// Close implements store.Store.
func (s *Store) Close() error { return s.inner.Close() }

// Load implements store.Loader when the inner store does.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	l, ok := s.inner.(store.Loader)
	if !ok {
		return nil, errors.New("faultstore: inner store cannot load")
	}
	return l.Load(ctx, seq)
}

// Name implements store.Namer.
func (s *Store) Name() string {
	if n, ok := s.inner.(store.Namer); ok {
		return "fault(" + n.Name() + ")"
	}
	return "fault"
}

// Stats implements store.Statser: the inner store's statistics plus the
// count of refused writes.
func (s *Store) Stats() map[string]float64 {
	out := map[string]float64{}
	if st, ok := s.inner.(store.Statser); ok {
		for k, v := range st.Stats() {
			out[k] = v
		}
	}
	out["injected_failures_total"] = float64(s.Failures())
	return out
}
