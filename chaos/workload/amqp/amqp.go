// Package amqp is the workload's AMQP 0-9-1 client (amqp091-go), for
// RabbitMQ: a workload.Protocol whose send is a persistent publish to a
// durable queue confirmed by a publisher confirm (basic.ack), and whose
// consumer acknowledges each delivery (basic.ack, no auto-ack).
//
// A workload destination is a queue named by workload.QueueName
// ("/queue/lossbench" is queue "lossbench"), declared durable on first use
// with x-queue-type QueueType (classic or quorum), published to through
// the default exchange. The message's fields travel as the headers
// lb-producer, lb-seq, lb-id and lb-ts, and the id also as message-id;
// RabbitMQ does not deduplicate, so a retried publish whose first attempt
// was stored is a duplicate the consumer reads twice.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/lossbench/lossbench/chaos/workload"
)

// Queue types (x-queue-type).
const (
	Classic = "classic"
	Quorum  = "quorum"
)

// Protocol is AMQP 0-9-1.
type Protocol struct {
	// QueueType is the declared queue's x-queue-type; default classic.
	QueueType string
}

// Name is "amqp".
func (Protocol) Name() string { return "amqp" }

// Dial connects as guest (or o.Login), opens a channel in confirm mode.
func (p Protocol) Dial(ctx context.Context, ep workload.Endpoint, o workload.DialOptions) (workload.Conn, error) {
	user, pass := "guest", "guest"
	if o.Login != "" {
		user, pass = o.Login, o.Passcode
	}
	var nc net.Conn
	cfg := amqp.Config{
		Heartbeat: o.HeartBeat,
		Locale:    "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: o.Timeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake is bounded like the connect; amqp091 clears
			// the deadline once it is done.
			_ = c.SetDeadline(time.Now().Add(o.Timeout))
			nc = c
			return c, nil
		},
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	conn, err := amqp.DialConfig("amqp://"+user+":"+pass+"@"+ep.Addr+"/", cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ep.Addr, err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", ep.Addr, err)
	}
	qt := p.QueueType
	if qt == "" {
		qt = Classic
	}
	return &amqpConn{conn: conn, nc: nc, ch: ch, o: o, queueType: qt, declared: map[string]bool{}, done: make(chan struct{})}, nil
}

// amqpConn is one connection with its publishing channel.
type amqpConn struct {
	conn      *amqp.Connection
	nc        net.Conn
	ch        *amqp.Channel // publishes, in confirm mode
	o         workload.DialOptions
	queueType string

	mu       sync.Mutex
	declared map[string]bool
	once     sync.Once
	done     chan struct{} // closed by Close and Abort
}

func (c *amqpConn) end() { c.once.Do(func() { close(c.done) }) }

// declare declares dest's queue once per connection on ch.
func (c *amqpConn) declare(ch *amqp.Channel, dest string) (string, error) {
	q := workload.QueueName(dest)
	c.mu.Lock()
	done := c.declared[q]
	c.mu.Unlock()
	if done {
		return q, nil
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": c.queueType}); err != nil {
		return "", fmt.Errorf("amqp: declare queue %s (%s): %w", q, c.queueType, err)
	}
	c.mu.Lock()
	c.declared[q] = true
	c.mu.Unlock()
	return q, nil
}

// Send publishes the message persistent and waits for its confirm. A
// basic.nack is a refusal; a timeout or a closed connection leaves the
// outcome unknown. Transactions (tx.commit) are not the workload's here.
func (c *amqpConn) Send(dest string, msgs []workload.Outgoing, tx bool) error {
	if tx || len(msgs) != 1 {
		return fmt.Errorf("%w: amqp: one confirmed message per publish, no transactions", workload.ErrNotSent)
	}
	q, err := c.declare(c.ch, dest)
	if err != nil {
		return fmt.Errorf("%w: %w", workload.ErrNotSent, err)
	}
	m := &msgs[0]
	ctx, cancel := context.WithTimeout(context.Background(), c.o.SendWait())
	defer cancel()
	headers := amqp.Table{}
	m.SetHeaders(func(k, v string) { headers[k] = v })
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, MessageId: m.ID, Body: m.Body, Headers: headers,
	})
	if err != nil {
		return err // written or not: unknown
	}
	if dc == nil {
		return fmt.Errorf("%w: amqp: channel not in confirm mode", workload.ErrNotSent)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !acked {
		// amqp091 resolves the confirms still pending when its channel
		// closes as nacks: only a nack on a live channel is the broker's.
		if c.ch.IsClosed() || c.conn.IsClosed() {
			return errors.New("amqp: connection closed before the confirm")
		}
		return fmt.Errorf("%w: amqp: basic.nack", workload.ErrRefused)
	}
	return nil
}

// Subscribe opens a channel of its own with a prefetch (basic.qos,
// default 100) and consumes dest's queue with manual acks.
func (c *amqpConn) Subscribe(dest, ack string) (workload.Subscription, error) {
	if ack != "" && ack != workload.AckClientIndividual {
		return nil, fmt.Errorf("amqp: ack mode %q: only %s (basic.ack of each delivery)", ack, workload.AckClientIndividual)
	}
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, err
	}
	q, err := c.declare(ch, dest)
	if err != nil {
		return nil, err
	}
	prefetch := c.o.Prefetch
	if prefetch <= 0 {
		prefetch = 100
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return nil, err
	}
	ds, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	s := &sub{dest: dest, c: make(chan *workload.Delivery, 16), done: c.done, closed: c.conn.NotifyClose(make(chan *amqp.Error, 1))}
	go s.pump(ds)
	return s, nil
}

type sub struct {
	dest   string
	c      chan *workload.Delivery
	done   <-chan struct{}
	closed chan *amqp.Error
}

func (s *sub) C() <-chan *workload.Delivery { return s.c }

// pump hands deliveries on until the channel closes (the connection
// ended), then one Delivery with the reason.
func (s *sub) pump(ds <-chan amqp.Delivery) {
	defer close(s.c)
	for m := range ds {
		d := &workload.Delivery{Dest: s.dest, Handle: m, Redelivered: m.Redelivered}
		d.ReadHeaders(func(k string) string { return str(m.Headers[k]) })
		select {
		case s.c <- d:
		case <-s.done:
			return
		}
	}
	err := errors.New("amqp: deliveries ended")
	select {
	case e := <-s.closed:
		if e != nil {
			err = e
		}
	default:
	}
	select {
	case s.c <- &workload.Delivery{Dest: s.dest, Err: err}:
	case <-s.done:
	}
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// Ack acknowledges d alone (basic.ack, multiple=false).
func (s *sub) Ack(d *workload.Delivery) error {
	m, ok := d.Handle.(amqp.Delivery)
	if !ok {
		return errors.New("amqp: not an AMQP delivery")
	}
	return m.Ack(false)
}

// Close closes the connection politely (connection.close), bounded by d
// through the socket's deadline.
func (c *amqpConn) Close(d time.Duration) {
	c.end()
	if c.nc != nil {
		_ = c.nc.SetDeadline(time.Now().Add(d))
	}
	_ = c.conn.Close()
}

// Abort drops the socket: in-flight confirms and acks are lost.
func (c *amqpConn) Abort() {
	c.end()
	if c.nc != nil {
		_ = c.nc.Close()
	}
	_ = c.conn.Close()
}
