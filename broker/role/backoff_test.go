package role

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const first, max = 100 * time.Millisecond, 5 * time.Second
	bases := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}
	b := newBackoff(first, max, 1)
	var seq []time.Duration
	for round := range 2 {
		for i, base := range bases {
			base *= time.Millisecond
			d := b.next()
			if d < base/2 || d > base {
				t.Fatalf("round %d, delay %d: %v, want within [%v, %v]", round, i, d, base/2, base)
			}
			if round == 0 {
				seq = append(seq, d)
			}
		}
		b.reset() // the next outage starts from first again
	}
	// Far along the curve it stays capped (no overflow).
	for range len(bases) {
		b.next()
	}
	for i := range 100 {
		if d := b.next(); d < max/2 || d > max {
			t.Fatalf("delay %d past the cap: %v, want within [%v, %v]", len(bases)+i, d, max/2, max)
		}
	}
	// The seed decides the jitter: the same seed, the same delays;
	// another seed, others.
	same, other := newBackoff(first, max, 1), newBackoff(first, max, 2)
	differ := false
	for i, want := range seq {
		if d := same.next(); d != want {
			t.Fatalf("seed 1 again, delay %d: %v, want %v", i, d, want)
		}
		if other.next() != want {
			differ = true
		}
	}
	if !differ {
		t.Fatal("seeds 1 and 2 gave the same delays: no jitter")
	}
}
