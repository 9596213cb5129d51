// Package jetstream is the workload's NATS JetStream client (nats.go): a
// workload.Protocol whose send is a JetStream publish confirmed by its
// PubAck, and whose consumer is a durable pull consumer with explicit
// acks.
//
// A workload destination maps to one stream and one subject: the
// destination's last path element, with every character outside
// [A-Za-z0-9_-] replaced by '_' ("/queue/lossbench" is stream
// "lossbench", subject "lossbench"). The stream is made on first use, file
// storage, Replicas copies, work-queue retention (a message acknowledged
// by a consumer is removed), and the consumers of a destination share the
// durable consumer "lossbench" on it, so each message goes to one of them,
// like a STOMP queue.
//
// The message's fields travel as the headers lb-producer, lb-seq, lb-id
// and lb-ts (as in STOMP), and the id also as Nats-Msg-Id: JetStream
// drops a retried publish whose id it stored within the stream's
// duplicate window (2 minutes), and answers it with a PubAck marked
// duplicate, which confirms the message like the first.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lossbench/lossbench/chaos/workload"
)

// Durable is the name of the durable consumer every workload consumer of a
// destination shares.
const Durable = "lossbench"

// AckWait is how long JetStream waits for a delivery's ack before it
// delivers the message again (to a consumer still there or a new one).
const AckWait = 5 * time.Second

// Protocol is NATS JetStream.
type Protocol struct {
	// Replicas is the streams' replica count (1, or 3 on a cluster of 3);
	// default 1.
	Replicas int
}

// Name is "nats".
func (Protocol) Name() string { return "nats" }

// Stream is the stream (and subject) name of workload destination dest
// (workload.QueueName).
func Stream(dest string) string { return workload.QueueName(dest) }

// Dial connects to the server at ep (no reconnects of nats.go's own: the
// workload's failover picks the next address).
func (p Protocol) Dial(ctx context.Context, ep workload.Endpoint, o workload.DialOptions) (workload.Conn, error) {
	opts := []nats.Option{
		nats.Timeout(o.Timeout),
		nats.NoReconnect(),
		nats.Name("lossbench"),
		// Errors reach the caller through the calls that fail; the
		// default handler would print them.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
	if o.HeartBeat > 0 {
		opts = append(opts, nats.PingInterval(o.HeartBeat), nats.MaxPingsOutstanding(2))
	}
	if o.Login != "" {
		opts = append(opts, nats.UserInfo(o.Login, o.Passcode))
	}
	type res struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		nc, err := nats.Connect("nats://"+ep.Addr, opts...)
		ch <- res{nc, err}
	}()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", ep.Addr, r.err)
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		r.nc.Close()
		return nil, fmt.Errorf("%s: %w", ep.Addr, err)
	}
	replicas := max(p.Replicas, 1)
	return &conn{nc: r.nc, js: js, o: o, replicas: replicas, streams: map[string]jetstream.Stream{}}, nil
}

// conn is one connection to one server.
type conn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	o        workload.DialOptions
	replicas int

	mu      sync.Mutex
	streams map[string]jetstream.Stream
	subs    []*sub
}

// stream returns dest's stream, making it when it does not exist.
func (c *conn) stream(dest string) (jetstream.Stream, error) {
	name := Stream(dest)
	c.mu.Lock()
	s, ok := c.streams[name]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.SendWait())
	defer cancel()
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{name}, Storage: jetstream.FileStorage,
			Replicas: c.replicas, Retention: jetstream.WorkQueuePolicy,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = c.js.Stream(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: stream %s: %w", name, err)
	}
	c.mu.Lock()
	c.streams[name] = s
	c.mu.Unlock()
	return s, nil
}

// Send publishes the message and waits for its PubAck. JetStream has no
// transaction of the workload's kind: tx or several messages are refused
// before anything is sent.
func (c *conn) Send(dest string, msgs []workload.Outgoing, tx bool) error {
	if tx || len(msgs) != 1 {
		return fmt.Errorf("%w: jetstream: one message per publish, no transactions", workload.ErrNotSent)
	}
	if _, err := c.stream(dest); err != nil {
		// No stream could be found or made: nothing was published.
		return fmt.Errorf("%w: %w", workload.ErrNotSent, err)
	}
	m := &msgs[0]
	msg := nats.NewMsg(Stream(dest))
	msg.Data = m.Body
	m.SetHeaders(msg.Header.Set)
	msg.Header.Set(nats.MsgIdHdr, m.ID)
	ctx, cancel := context.WithTimeout(context.Background(), c.o.SendWait())
	defer cancel()
	_, err := c.js.PublishMsg(ctx, msg)
	return classify(err)
}

// classify wraps a publish error with what became of the message: an
// error the stream answered with (an API error) or no stream listening
// (no responders) means it was not stored; a timeout or a closed
// connection leaves it unknown.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: %w", workload.ErrRefused, err)
	case errors.As(err, &api):
		return fmt.Errorf("%w: %w", workload.ErrRefused, err)
	}
	// nats.go reports a connection closed before the request was written
	// like one closed while waiting for the PubAck: unknown.
	return err
}

// Subscribe binds to the durable pull consumer of dest (making it when
// missing) and pulls up to Prefetch messages at a time (default 100).
func (c *conn) Subscribe(dest, ack string) (workload.Subscription, error) {
	if ack != "" && ack != workload.AckClientIndividual {
		return nil, fmt.Errorf("jetstream: ack mode %q: only %s (explicit ack of each message)", ack, workload.AckClientIndividual)
	}
	s, err := c.stream(dest)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.SendWait())
	defer cancel()
	prefetch := c.o.Prefetch
	if prefetch <= 0 {
		prefetch = 100
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 10_000,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: consumer %s on %s: %w", Durable, Stream(dest), err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(prefetch), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: pull %s: %w", Stream(dest), err)
	}
	sb := &sub{dest: dest, it: it, c: make(chan *workload.Delivery, 16), done: make(chan struct{})}
	c.mu.Lock()
	c.subs = append(c.subs, sb)
	c.mu.Unlock()
	go sb.pump()
	return sb, nil
}

// sub hands pulled messages on as Deliveries.
type sub struct {
	dest string
	it   jetstream.MessagesContext
	c    chan *workload.Delivery
	once sync.Once
	done chan struct{}
}

func (s *sub) C() <-chan *workload.Delivery { return s.c }

func (s *sub) stop() {
	s.once.Do(func() {
		close(s.done)
		s.it.Stop()
	})
}

func (s *sub) pump() {
	defer close(s.c)
	for {
		m, err := s.it.Next()
		d := &workload.Delivery{Dest: s.dest, Err: err}
		if err == nil {
			d.Handle = m
			d.ReadHeaders(m.Headers().Get)
			if md, merr := m.Metadata(); merr == nil {
				d.Redelivered = md.NumDelivered > 1
			}
		}
		select {
		case s.c <- d:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Ack acknowledges d (AckExplicit; not waiting for the server's reply,
// like a STOMP ACK).
func (s *sub) Ack(d *workload.Delivery) error {
	m, ok := d.Handle.(jetstream.Msg)
	if !ok {
		return errors.New("jetstream: not a JetStream delivery")
	}
	return m.Ack()
}

// Close stops the subscriptions and closes the connection; nats.go's
// Close flushes what is buffered first (bounded by its own timeout).
func (c *conn) Close(time.Duration) {
	c.stopSubs()
	c.nc.Close()
}

// Abort closes the connection at once.
func (c *conn) Abort() {
	c.stopSubs()
	c.nc.Close()
}

func (c *conn) stopSubs() {
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
}
