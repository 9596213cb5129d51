package journal

import (
	"context"
	"fmt"

	"github.com/lossbench/lossbench/broker/store"
)

var _ store.Applier = (*Store)(nil)

// Apply implements store.Applier: it queues every batch of bs in order,
// so they go into the log in that order (in one group commit when they
// fit), and waits for all. The adds keep their Seq; an add whose seq is
// not above every seq before it fails its batch, unwritten, and Apply
// returns the first error.
func (s *Store) Apply(ctx context.Context, bs []*store.Batch, next uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	reqs := make([]*request, 0, len(bs)+1)
	for i, b := range bs {
		r := &request{b: b, size: batchFrameSize(b), keep: true, done: make(chan error, 1)}
		if r.size > maxFrameLen {
			return fmt.Errorf("journal: batch of %d bytes too large", r.size)
		}
		if i == len(bs)-1 {
			r.next = next
		}
		reqs = append(reqs, r)
	}
	if next >= maxSeq {
		return fmt.Errorf("journal: next sequence number %d out of range", next)
	}
	if len(bs) == 0 && next > 0 {
		// Only the next seq: an empty batch carries it (not logged).
		reqs = append(reqs, &request{b: &store.Batch{}, keep: true, next: next, done: make(chan error, 1)})
	}
	if err := s.admit(); err != nil {
		return err
	}
	for _, r := range reqs {
		s.reqs <- r
	}
	s.closeMu.RUnlock()
	var first error
	for _, r := range reqs {
		if err := <-r.done; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// NextSeq implements store.Applier.
func (s *Store) NextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextSeq
}

// validateSeqsLocked checks that the adds of an applied batch keep seqs
// increasing above every seq handed out so far.
func (s *Store) validateSeqsLocked(b *store.Batch) error {
	want := s.nextSeq
	for _, m := range b.Adds {
		if err := checkSeq(m.Seq, want); err != nil {
			return fmt.Errorf("journal: applied %w", err)
		}
		want = m.Seq + 1
	}
	return nil
}

// checkSeq checks that seq, kept from a record (replay) or a master's
// batch (Apply), is at least want and in range.
func checkSeq(seq, want uint64) error {
	if seq < want {
		return fmt.Errorf("sequence number %d not above %d", seq, want-1)
	}
	if seq >= maxSeq {
		return fmt.Errorf("sequence number %d out of range", seq)
	}
	return nil
}

// tap hands the batches of reqs, just written, to Options.Tap.
func (s *Store) tap(reqs []*request) {
	if s.opts.Tap == nil || len(reqs) == 0 || s.failed.Load() != nil {
		return
	}
	bs := make([]*store.Batch, 0, len(reqs))
	for _, r := range reqs {
		if len(r.b.Adds) > 0 || len(r.b.Acks) > 0 {
			bs = append(bs, r.b)
		}
	}
	if len(bs) > 0 {
		s.opts.Tap(bs)
	}
}
