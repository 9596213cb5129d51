package workload

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
)

// ProducerConfig is one producer's work.
type ProducerConfig struct {
	// ID names the producer in the history and in message ids ("p3").
	ID string
	// Run prefixes every message id, so ids are unique across runs.
	Run string
	// Dest is the destination, e.g. "/queue/lossbench".
	Dest string
	// Size is the body size in bytes.
	Size int
	// Rate is messages per second; 0 sends as fast as receipts come back.
	Rate float64
	// NonPersistent sends persistent:false instead of persistent:true.
	NonPersistent bool
	// TxSize > 0 sends messages in transactions of TxSize SENDs, the
	// batch acknowledged by the COMMIT's receipt.
	TxSize int
	// Duration bounds the time new messages are started, from Run's
	// start. Retries of messages already started go on after it until
	// they end or Run's context ends.
	Duration time.Duration
	// MaxMessages bounds the number of messages; 0 means no bound (then
	// Duration must be set).
	MaxMessages uint64
	// SendTimeout is how long a send waits for its receipt before the
	// connection is dropped and the outcome is unknown. Default 5s.
	SendTimeout time.Duration
	// MaxAttempts bounds the attempts per message; 0 means until Run's
	// context ends.
	MaxAttempts int
	Failover    Failover
}

// ProducerStats are a producer's running counts.
type ProducerStats struct {
	Messages   uint64 // distinct messages invoked at least once
	Acked      uint64 // messages whose receipt arrived
	Failed     uint64 // attempts answered by an ERROR frame
	Unknown    uint64 // attempts whose outcome is unknown
	Retries    uint64 // attempts after the first
	Reconnects uint64 // connections made after the first
}

// Producer sends messages and records each attempt in a history.
type Producer struct {
	cfg  ProducerConfig
	h    *history.Writer
	body []byte

	messages, acked, failed, unknown, retries, connects atomic.Uint64

	sess *session // owned by Run's goroutine
}

// NewProducer checks cfg and returns a producer writing to h.
func NewProducer(cfg ProducerConfig, h *history.Writer) (*Producer, error) {
	if cfg.ID == "" || cfg.Dest == "" {
		return nil, errors.New("workload: producer needs an ID and a Dest")
	}
	if cfg.Duration <= 0 && cfg.MaxMessages == 0 {
		return nil, fmt.Errorf("workload: producer %s: needs a Duration or MaxMessages, or it never stops", cfg.ID)
	}
	if cfg.Size < 0 || cfg.Rate < 0 || cfg.TxSize < 0 || cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("workload: producer %s: negative size, rate, tx size or attempts", cfg.ID)
	}
	if len(cfg.Failover.Endpoints) == 0 {
		return nil, fmt.Errorf("workload: producer %s: %w", cfg.ID, ErrNoEndpoints)
	}
	cfg.SendTimeout = orDefault(cfg.SendTimeout, defaultSendTimeout)
	body := make([]byte, cfg.Size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	return &Producer{cfg: cfg, h: h, body: body}, nil
}

// Stats returns the producer's counts so far; safe to call while Run runs.
func (p *Producer) Stats() ProducerStats {
	c := p.connects.Load()
	if c > 0 {
		c--
	}
	return ProducerStats{
		Messages: p.messages.Load(), Acked: p.acked.Load(),
		Failed: p.failed.Load(), Unknown: p.unknown.Load(),
		Retries: p.retries.Load(), Reconnects: c,
	}
}

// outMsg is one message in flight.
type outMsg struct {
	seq uint64
	id  string
	ts  int64 // lb-ts header
	t0  time.Time
	inv time.Time // invoke of the current attempt
}

// Run sends until Duration or MaxMessages is reached, then finishes the
// message in flight (retrying it while ctx allows) and returns. It returns
// nil when it stopped by its own bounds or ctx ended.
func (p *Producer) Run(ctx context.Context) error {
	defer func() {
		p.sess.close(time.Second)
		p.sess = nil
	}()
	var deadline time.Time
	if p.cfg.Duration > 0 {
		deadline = time.Now().Add(p.cfg.Duration)
	}
	tb := newBucket(p.cfg.Rate)
	batch := 1
	if p.cfg.TxSize > 0 {
		batch = p.cfg.TxSize
	}
	msgs := make([]*outMsg, 0, batch)
	var seq uint64
	for {
		if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return nil
		}
		if p.cfg.MaxMessages > 0 && seq >= p.cfg.MaxMessages {
			return nil
		}
		if !tb.take(ctx, deadline) {
			return nil
		}
		if p.sess == nil {
			if err := p.reconnect(ctx); err != nil {
				return ignoreCtx(ctx, err)
			}
		}
		msgs = msgs[:0]
		for len(msgs) < batch && (p.cfg.MaxMessages == 0 || seq < p.cfg.MaxMessages) {
			if len(msgs) > 0 && !tb.take(ctx, deadline) {
				break
			}
			seq++
			now := time.Now()
			msgs = append(msgs, &outMsg{
				seq: seq,
				id:  MessageID(p.cfg.Run, p.cfg.ID, seq),
				ts:  now.UnixNano(),
				t0:  now,
			})
		}
		p.messages.Add(uint64(len(msgs)))
		if err := p.deliver(ctx, msgs); err != nil {
			return ignoreCtx(ctx, err)
		}
	}
}

func ignoreCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Producer) reconnect(ctx context.Context) error {
	s, err := p.cfg.Failover.connect(ctx, DialOptions{SendTimeout: p.cfg.SendTimeout})
	if err != nil {
		return fmt.Errorf("workload: producer %s: %w", p.cfg.ID, err)
	}
	p.connects.Add(1)
	p.sess = s
	return nil
}

// deliver sends msgs (one message, or one transaction) until they are
// acknowledged, attempts run out or ctx ends.
func (p *Producer) deliver(ctx context.Context, msgs []*outMsg) error {
	for attempt := 1; ; attempt++ {
		if p.sess == nil {
			if err := p.reconnect(ctx); err != nil {
				return err
			}
		}
		if attempt > 1 {
			p.retries.Add(uint64(len(msgs)))
		}
		node := p.sess.ep.node()
		for _, m := range msgs {
			m.inv = time.Now()
			p.h.Add(history.Event{Time: m.inv, Type: history.Invoke, Process: p.cfg.ID,
				Producer: p.cfg.ID, Seq: m.seq, ID: m.id, Attempt: attempt, Dest: p.cfg.Dest, Node: node})
		}
		out := make([]Outgoing, len(msgs))
		for i, m := range msgs {
			out[i] = Outgoing{Producer: p.cfg.ID, Seq: m.seq, ID: m.id, Attempt: attempt, TS: m.ts,
				Body: p.body, Persistent: !p.cfg.NonPersistent}
		}
		typ, why := Outcome(p.sess.Send(p.cfg.Dest, out, p.cfg.TxSize > 0))
		now := time.Now()
		for _, m := range msgs {
			p.h.Add(history.Event{Time: now, Type: typ, Process: p.cfg.ID, Producer: p.cfg.ID,
				Seq: m.seq, ID: m.id, Attempt: attempt, Dest: p.cfg.Dest, Node: node,
				LatencyNS: int64(now.Sub(m.inv)), Error: why})
		}
		switch typ {
		case history.OK:
			p.acked.Add(uint64(len(msgs)))
			return nil
		case history.Fail:
			p.failed.Add(uint64(len(msgs)))
		default:
			p.unknown.Add(uint64(len(msgs)))
		}
		// A refusal may have closed the connection (go-stomp closes it on
		// any ERROR); drop ours in every case, so the next attempt fails
		// over.
		p.sess.abort()
		p.sess = nil
		if ctx.Err() != nil || (p.cfg.MaxAttempts > 0 && attempt >= p.cfg.MaxAttempts) {
			return nil
		}
	}
}
