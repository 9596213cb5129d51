package workload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
)

// Ack modes a consumer subscribes with (STOMP's ack header; the other
// protocols take AckClientIndividual, one ack per message).
const (
	AckClientIndividual = "client-individual"
	AckClient           = "client"
	AckAuto             = "auto"
)

// ConsumerConfig is one consumer's work.
type ConsumerConfig struct {
	// ID names the consumer in the history ("c0").
	ID   string
	Dest string
	// Ack is the subscription's ack mode; default client-individual.
	Ack string
	// Prefetch, when > 0, bounds the unacknowledged deliveries: STOMP
	// sends it as activemq.prefetchSize and prefetch-count on SUBSCRIBE.
	Prefetch int
	// HeartBeat asks the broker for heart-beats this often, so a dead or
	// paused broker is noticed and the consumer fails over. 0 disables.
	HeartBeat time.Duration
	// WriteTimeout bounds a blocked ACK write before the connection is
	// dropped. Default 5s.
	WriteTimeout time.Duration
	Failover     Failover
}

// ConsumerStats are a consumer's running counts.
type ConsumerStats struct {
	Received   uint64
	Reconnects uint64
}

// Consumer receives messages, records each as a recv event and then
// acknowledges it, reconnecting and resubscribing after failures.
type Consumer struct {
	cfg ConsumerConfig
	h   *history.Writer

	received, connects atomic.Uint64
	// lastActive is the unix nanos of the last message or (re)subscribe;
	// subscribed is 1 while a subscription is live. WaitQuiet reads both.
	lastActive atomic.Int64
	subscribed atomic.Bool
}

// NewConsumer checks cfg and returns a consumer writing to h.
func NewConsumer(cfg ConsumerConfig, h *history.Writer) (*Consumer, error) {
	if cfg.ID == "" || cfg.Dest == "" {
		return nil, errors.New("workload: consumer needs an ID and a Dest")
	}
	if len(cfg.Failover.Endpoints) == 0 {
		return nil, fmt.Errorf("workload: consumer %s: %w", cfg.ID, ErrNoEndpoints)
	}
	c := &Consumer{cfg: cfg, h: h}
	switch cfg.Ack {
	case "":
		c.cfg.Ack = AckClientIndividual
	case AckClientIndividual, AckClient, AckAuto:
	default:
		return nil, fmt.Errorf("workload: consumer %s: ack mode %q: want %s, %s or %s",
			cfg.ID, cfg.Ack, AckClientIndividual, AckClient, AckAuto)
	}
	c.cfg.WriteTimeout = orDefault(cfg.WriteTimeout, 5*time.Second)
	c.lastActive.Store(time.Now().UnixNano())
	return c, nil
}

// Stats returns the consumer's counts so far; safe while Run runs.
func (c *Consumer) Stats() ConsumerStats {
	n := c.connects.Load()
	if n > 0 {
		n--
	}
	return ConsumerStats{Received: c.received.Load(), Reconnects: n}
}

// Subscribed reports whether the consumer has a live subscription.
func (c *Consumer) Subscribed() bool { return c.subscribed.Load() }

// Idle is how long ago the consumer last received a message or
// subscribed.
func (c *Consumer) Idle() time.Duration {
	return time.Since(time.Unix(0, c.lastActive.Load()))
}

func (c *Consumer) touch(t time.Time) { c.lastActive.Store(t.UnixNano()) }

// Run receives until ctx ends; it returns nil then, or an error when the
// consumer cannot connect within its failover bounds.
func (c *Consumer) Run(ctx context.Context) error {
	o := DialOptions{HeartBeat: c.cfg.HeartBeat, WriteTimeout: c.cfg.WriteTimeout, Prefetch: c.cfg.Prefetch}
	first := orDefault(c.cfg.Failover.InitialBackoff, 50*time.Millisecond)
	maxBackoff := orDefault(c.cfg.Failover.MaxBackoff, time.Second)
	backoff := first
	for ctx.Err() == nil {
		s, err := c.cfg.Failover.connect(ctx, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("workload: consumer %s: %w", c.cfg.ID, err)
		}
		c.connects.Add(1)
		if c.session(ctx, s) {
			backoff = first
			continue
		}
		// The session ended before it delivered anything: the broker
		// accepts connections but refuses the subscription (a standby, a
		// broker still starting, an ERROR frame). Pause as between connect
		// rounds, or the consumer reconnects at full speed for as long as
		// that lasts.
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// session subscribes on s and consumes until the connection fails or ctx
// ends. It reports whether the session delivered any message.
func (c *Consumer) session(ctx context.Context, s *session) (delivered bool) {
	defer func() {
		c.subscribed.Store(false)
		if ctx.Err() != nil {
			s.close(time.Second)
		} else {
			s.abort()
		}
	}()
	sub, err := s.Subscribe(c.cfg.Dest, c.cfg.Ack)
	if err != nil {
		return false
	}
	c.subscribed.Store(true)
	c.touch(time.Now())
	node := s.ep.node()
	// ACKs go out from their own goroutine, off the delivery path:
	// go-stomp hands MESSAGEs to the subscription (a channel of 16) on the
	// same goroutine that writes ACKs, so a receive loop that blocks on an
	// ACK while more messages are in flight than that channel holds stalls
	// both for good. The receive loop only queues an ACK and reads on.
	acks := newAcker(s, sub, c.cfg.WriteTimeout)
	defer acks.stop()
	pending := 0 // unacked messages in client mode
	for {
		var m *Delivery
		var ok bool
		select {
		case <-ctx.Done():
			return
		case m, ok = <-sub.C():
		}
		if !ok || m.Err != nil {
			return
		}
		delivered = true
		now := time.Now()
		c.touch(now)
		c.record(m, node, now)
		c.received.Add(1)
		if c.cfg.Ack == AckAuto {
			continue
		}
		if c.cfg.Ack == AckClient {
			// client acks are cumulative: ack when caught up or every 64.
			pending++
			if pending < 64 && len(sub.C()) > 0 {
				continue
			}
			pending = 0
		}
		if !acks.push(m) {
			return // an ACK failed: the connection is gone
		}
	}
}

// acker writes a session's ACKs in order on its own goroutine; its queue
// has no bound, so queueing never blocks the receive loop (the broker's
// prefetch bounds what can be waiting).
type acker struct {
	s       *session
	sub     Subscription
	timeout time.Duration
	mu      sync.Mutex
	queue   []*Delivery
	failed  bool
	wake    chan struct{}
	done    chan struct{}
	exited  chan struct{}
}

func newAcker(s *session, sub Subscription, writeTimeout time.Duration) *acker {
	a := &acker{s: s, sub: sub, timeout: writeTimeout, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	go a.run()
	return a
}

// push queues m's ACK; false once an ACK failed.
func (a *acker) push(m *Delivery) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failed {
		return false
	}
	a.queue = append(a.queue, m)
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return true
}

// stop writes the ACKs still queued and ends the goroutine. It waits at
// most the write timeout; then it drops the connection (the broker
// redelivers what was not acknowledged).
func (a *acker) stop() {
	close(a.done)
	t := time.NewTimer(a.timeout)
	defer t.Stop()
	select {
	case <-a.exited:
	case <-t.C:
		a.s.abort()
		<-a.exited
	}
}

func (a *acker) run() {
	defer close(a.exited)
	for {
		var stopping bool
		select {
		case <-a.done:
			stopping = true
		case <-a.wake:
		}
		for {
			a.mu.Lock()
			batch := a.queue
			a.queue = nil
			a.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, m := range batch {
				// A write blocked longer than the write timeout fails
				// the Ack and drops the connection (the session then
				// reconnects).
				if err := a.sub.Ack(m); err != nil {
					a.mu.Lock()
					a.failed = true
					a.mu.Unlock()
					a.s.abort()
					return
				}
			}
		}
		if stopping {
			return
		}
	}
}

// record writes the recv event of m.
func (c *Consumer) record(m *Delivery, node string, now time.Time) {
	e := history.Event{Time: now, Type: history.Recv, Process: c.cfg.ID, Dest: m.Dest, Node: node,
		Producer: m.Producer, ID: m.ID, Seq: m.Seq, Redelivered: m.Redelivered}
	if m.TS != 0 {
		e.LatencyNS = now.UnixNano() - m.TS
	}
	c.h.Add(e)
}
