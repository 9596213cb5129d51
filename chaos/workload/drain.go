package workload

import (
	"context"
	"time"
)

// WaitQuiet is the drain: it returns once every consumer has a live
// subscription and none has received a message for quiet, or after max,
// or when ctx ends. It reports whether the consumers went quiet (false:
// max or ctx cut the drain short).
func WaitQuiet(ctx context.Context, quiet, max time.Duration, cs ...*Consumer) bool {
	end := time.Now().Add(max)
	tick := quiet / 10
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	if tick > 200*time.Millisecond {
		tick = 200 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		done := true
		for _, c := range cs {
			if !c.Subscribed() || c.Idle() < quiet {
				done = false
				break
			}
		}
		if done {
			return true
		}
		if !time.Now().Before(end) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
