package errorfs

import (
	"math/rand/v2"
	"sync"
)

// Random fails each operation of the given kinds (all if none) with
// probability p, with err; seed makes the sequence replayable.
func Random(p float64, seed uint64, err error, kinds ...OpKind) Injector {
	return &random{p: p, err: err, kinds: kinds, rng: rand.New(rand.NewPCG(seed, seed+1))}
}

type random struct {
	mu    sync.Mutex
	p     float64
	err   error
	kinds []OpKind
	rng   *rand.Rand
}

func (r *random) Inject(op *Op) error {
	if !matchKind(r.kinds, op.Kind) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rng.Float64() < r.p {
		if op.Kind == OpWrite {
			op.N = 0
		}
		return r.err
	}
	return nil
}
