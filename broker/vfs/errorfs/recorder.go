package errorfs

import "sync"

// Recorder injects nothing and remembers every operation, so a test can
// check what a program did, e.g. that it never retried a failed sync.
type Recorder struct {
	mu  sync.Mutex
	ops []Op
}

// Inject implements Injector.
func (r *Recorder) Inject(op *Op) error {
	r.mu.Lock()
	r.ops = append(r.ops, *op)
	r.mu.Unlock()
	return nil
}

// Ops returns the operations seen so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Count returns how many operations of kind were seen.
func (r *Recorder) Count(kind OpKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, op := range r.ops {
		if op.Kind == kind {
			n++
		}
	}
	return n
}
