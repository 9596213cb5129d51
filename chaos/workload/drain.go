package workload

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
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

// FinalDrain reads what the consumers left, after they stopped: for each
// endpoint and destination, a fresh connection and subscription (so
// nothing a stalled consumer held stays held) receives until nothing has
// arrived for Quiet and the broker says it holds nothing there, or cannot
// say. It makes "lost" mean lost: a message still in the broker is read
// here, not counted as loss because a consumer stopped taking messages.
type FinalDrain struct {
	Dests     []string
	Endpoints []Endpoint
	// Failover gives the connection settings (timeouts, login); its
	// endpoints are replaced by each of Endpoints in turn.
	Failover Failover
	// Quiet is how long without a message ends a destination's drain.
	Quiet time.Duration
	// Depth, if set, says how many messages (ready and in flight) the
	// broker of node holds on dest; ok is false when it cannot say.
	Depth func(ctx context.Context, node, dest string) (n int, ok bool)
	// DeadLetter, if set, names the dead-letter queue of dest (ok false:
	// it has none); the drain reads it too, as history.DeadLetterProcess,
	// so a message the broker gave up delivering is not counted as lost.
	DeadLetter func(dest string) (dlq string, ok bool)
}

// DeadLetterQueue is refbroker's dead-letter queue of a queue,
// /queue/DLQ.<name> (ActiveMQ's individual dead-letter strategy); a topic
// or a dead-letter queue has none.
func DeadLetterQueue(dest string) (string, bool) {
	const prefix, dlq = "/queue/", "/queue/DLQ."
	if !strings.HasPrefix(dest, prefix) || strings.HasPrefix(dest, dlq) {
		return "", false
	}
	return dlq + strings.TrimPrefix(dest, prefix), true
}

// DrainStats is what a final drain did.
type DrainStats struct {
	// Received counts the messages read from the destinations.
	Received uint64
	// DeadLettered counts the messages read from their dead-letter queues.
	DeadLettered uint64
	// Left lists "node dest: n" for each place the broker still held
	// messages when the drain ended (ctx's deadline); empty when it
	// emptied every broker that says its depth.
	Left []string
}

// Run drains until every endpoint is done or ctx ends. An endpoint that
// refuses connections (a standby, a node down) is skipped.
func (d FinalDrain) Run(ctx context.Context, h *history.Writer) DrainStats {
	var st DrainStats
	for _, ep := range d.Endpoints {
		for _, dest := range d.Dests {
			n, left := d.one(ctx, h, ep, history.DrainProcess, dest)
			st.Received += n
			if left > 0 {
				st.Left = append(st.Left, fmt.Sprintf("%s %s: %d", ep.node(), dest, left))
			}
			if d.DeadLetter == nil {
				continue
			}
			if dlq, ok := d.DeadLetter(dest); ok {
				n, left := d.one(ctx, h, ep, history.DeadLetterProcess, dlq)
				st.DeadLettered += n
				if left > 0 {
					st.Left = append(st.Left, fmt.Sprintf("%s %s: %d", ep.node(), dlq, left))
				}
			}
		}
	}
	return st
}

// one drains dest on ep, recording as process; left is the depth the
// broker still reports when ctx ends first (0 if it cannot say).
func (d FinalDrain) one(ctx context.Context, h *history.Writer, ep Endpoint, process, dest string) (received uint64, left int) {
	fo := d.Failover
	fo.Endpoints, fo.MaxRounds = []Endpoint{ep}, 1
	c, err := NewConsumer(ConsumerConfig{ID: process, Dest: dest, Ack: AckClientIndividual, Prefetch: 100, Failover: fo}, h)
	if err != nil {
		return 0, 0
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	defer func() {
		cancel()
		<-done
	}()
	tick := time.NewTicker(min(max(d.Quiet/10, 10*time.Millisecond), 200*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			done <- nil // for the deferred wait
			return c.Stats().Received, 0
		case <-ctx.Done():
			if d.Depth != nil {
				// ctx is over: ask with a short bound of its own.
				qctx, qcancel := context.WithTimeout(context.Background(), time.Second)
				n, ok := d.Depth(qctx, ep.node(), dest)
				qcancel()
				if ok {
					left = n
				}
			}
			return c.Stats().Received, left
		case <-tick.C:
		}
		if !c.Subscribed() || c.Idle() < d.Quiet {
			continue
		}
		if d.Depth != nil {
			if n, ok := d.Depth(ctx, ep.node(), dest); ok && n > 0 {
				continue // the broker still holds messages: keep reading
			}
		}
		return c.Stats().Received, 0
	}
}
