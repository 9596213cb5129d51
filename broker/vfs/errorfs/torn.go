package errorfs

import (
	"math/rand/v2"
	"sync"
	"syscall"
)

// TornWrite makes the nth (1-based) write store only a random prefix of
// its bytes, chosen with seed, and fail with EIO: a write torn by a failing
// device.
func TornWrite(n int64, seed uint64) Injector {
	return &torn{n: n, rng: rand.New(rand.NewPCG(seed, seed+1))}
}

type torn struct {
	mu    sync.Mutex
	n     int64
	count int64
	rng   *rand.Rand
}

func (t *torn) Inject(op *Op) error {
	if op.Kind != OpWrite {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count++
	if t.count != t.n {
		return nil
	}
	op.N = t.rng.IntN(op.N + 1)
	return syscall.EIO
}
