package workload

import (
	"context"
	"time"
)

// bucket is a token bucket: rate tokens a second, at most burst saved up.
// One producer owns one; it is not safe for concurrent use.
type bucket struct {
	rate   float64 // tokens per second; 0 means no limit
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket {
	burst := rate / 20 // 50ms worth
	if burst < 1 {
		burst = 1
	}
	return &bucket{rate: rate, burst: burst, tokens: 1, last: time.Now()}
}

// take waits for one token, or returns false when ctx ends or the wait
// would pass deadline.
func (b *bucket) take(ctx context.Context, deadline time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	for {
		now := time.Now()
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		b.last = now
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		if b.tokens >= 1 {
			b.tokens--
			return true
		}
		wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		if !deadline.IsZero() && now.Add(wait).After(deadline) {
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
