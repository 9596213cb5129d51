package role

import (
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with jitter. The n-th delay
// (from 0) is drawn uniformly from [base/2, base], base = min(first·2ⁿ,
// max): never below half the curve, so a broker does not hammer a
// database that is coming back, and brokers that lost it together do not
// come back in step.
type backoff struct {
	first, max time.Duration
	rng        *rand.Rand
	n          int
}

// newBackoff returns a backoff from first to max whose jitter is drawn
// from seed.
func newBackoff(first, max time.Duration, seed uint64) *backoff {
	return &backoff{first: first, max: max, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// next returns the next delay.
func (b *backoff) next() time.Duration {
	base := b.max
	if b.n < 62 && b.first<<b.n > 0 && b.first<<b.n < b.max {
		base = b.first << b.n
	}
	b.n++
	half := base / 2
	return half + time.Duration(b.rng.Int64N(int64(base-half)+1))
}

// reset starts the curve again from first.
func (b *backoff) reset() { b.n = 0 }
