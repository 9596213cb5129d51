package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/lossbench/lossbench/chaos/workload"
)

// client is how Run reaches the broker: STOMP through go-stomp (refbroker,
// ActiveMQ, RabbitMQ's STOMP plugin) or a workload.Protocol (NATS
// JetStream).
type client interface {
	// consume subscribes the one consumer to the load's queue: got is
	// called for each delivery before its ack; an error ends it, unless
	// stopped is set.
	consume(got func(), stopped *atomic.Bool) (consumer, error)
	// producer connects producer p.
	producer(ctx context.Context, p int) (producer, error)
}

// consumer is the subscription consume started.
type consumer interface {
	// stop ends the subscription; done then yields its end (nil, or the
	// error that ended it first).
	stop()
	done() <-chan error
	close()
}

// producer is one producer's connection.
type producer interface {
	// send sends body as message seq and waits for its confirmation.
	send(body []byte, seq int) error
	close()
}

// stompClient is the bench's STOMP client.
type stompClient struct{ l Load }

func (c stompClient) connOpts() []func(*stomp.Conn) error {
	opts := []func(*stomp.Conn) error{stomp.ConnOpt.HeartBeat(0, 0)}
	if c.l.Host != "" {
		opts = append(opts, stomp.ConnOpt.Host(c.l.Host))
	}
	return opts
}

type stompConsumer struct {
	conn *stomp.Conn
	sub  *stomp.Subscription
	end  chan error
}

func (c stompClient) consume(got func(), stopped *atomic.Bool) (consumer, error) {
	// go-stomp runs reads and writes through one loop: a consumer whose
	// ACKs fill the write channel while deliveries fill the subscription
	// channel deadlocks, so the write channel must hold more than the
	// prefetch window.
	conn, err := stomp.Dial("tcp", c.l.Addr, append(c.connOpts(), stomp.ConnOpt.WriteChannelCapacity(1<<16))...)
	if err != nil {
		return nil, fmt.Errorf("bench: consumer connect %s: %w", c.l.Addr, err)
	}
	subOpts := []func(*frame.Frame) error{
		stomp.SubscribeOpt.Header("activemq.prefetchSize", "1000"),
		stomp.SubscribeOpt.Header("prefetch-count", "1000"),
	}
	for _, k := range sortedKeys(c.l.QueueHeaders) {
		subOpts = append(subOpts, stomp.SubscribeOpt.Header(k, c.l.QueueHeaders[k]))
	}
	sub, err := conn.Subscribe(c.l.Dest, stomp.AckClientIndividual, subOpts...)
	if err != nil {
		conn.MustDisconnect()
		return nil, fmt.Errorf("bench: subscribe %s: %w", c.l.Dest, err)
	}
	sc := &stompConsumer{conn: conn, sub: sub, end: make(chan error, 1)}
	go func() {
		for msg := range sub.C {
			if msg.Err != nil {
				if stopped.Load() {
					break
				}
				sc.end <- fmt.Errorf("bench: consumer: %w", msg.Err)
				return
			}
			got()
			if err := conn.Ack(msg); err != nil && !stopped.Load() {
				sc.end <- fmt.Errorf("bench: ack: %w", err)
				return
			}
		}
		sc.end <- nil
	}()
	return sc, nil
}

func (c *stompConsumer) stop()              { _ = c.sub.Unsubscribe() }
func (c *stompConsumer) done() <-chan error { return c.end }
func (c *stompConsumer) close()             { c.conn.MustDisconnect() }

type stompProducer struct {
	conn *stomp.Conn
	dest string
	opts []func(*frame.Frame) error
}

func (c stompClient) producer(_ context.Context, _ int) (producer, error) {
	conn, err := stomp.Dial("tcp", c.l.Addr, c.connOpts()...)
	if err != nil {
		return nil, err
	}
	opts := []func(*frame.Frame) error{stomp.SendOpt.Receipt,
		stomp.SendOpt.Header("persistent", strconv.FormatBool(c.l.Persistent))}
	for _, k := range sortedKeys(c.l.QueueHeaders) {
		opts = append(opts, stomp.SendOpt.Header(k, c.l.QueueHeaders[k]))
	}
	return &stompProducer{conn: conn, dest: c.l.Dest, opts: opts}, nil
}

func (p *stompProducer) send(body []byte, _ int) error {
	return p.conn.Send(p.dest, "application/octet-stream", body, p.opts...)
}

func (p *stompProducer) close() { p.conn.MustDisconnect() }

// protocolClient is the bench's client over a workload.Protocol.
type protocolClient struct{ l Load }

// protocolDial are the bench's connection settings: a send waits long
// for its confirmation (an error ends its producer), the consumer pulls
// up to 1000 messages at once, as the STOMP consumer's prefetch.
func (c *protocolClient) dial(ctx context.Context) (workload.Conn, error) {
	return c.l.Protocol.Dial(ctx, workload.Endpoint{Addr: c.l.Addr}, workload.DialOptions{
		Timeout: 5 * time.Second, SendTimeout: 30 * time.Second, WriteTimeout: 5 * time.Second, Prefetch: 1000,
	})
}

type protocolConsumer struct {
	conn workload.Conn
	quit chan struct{}
	end  chan error
}

func (c *protocolClient) consume(got func(), stopped *atomic.Bool) (consumer, error) {
	conn, err := c.dial(context.Background())
	if err != nil {
		return nil, fmt.Errorf("bench: consumer connect %s: %w", c.l.Addr, err)
	}
	sub, err := conn.Subscribe(c.l.Dest, workload.AckClientIndividual)
	if err != nil {
		conn.Abort()
		return nil, fmt.Errorf("bench: subscribe %s: %w", c.l.Dest, err)
	}
	pc := &protocolConsumer{conn: conn, quit: make(chan struct{}), end: make(chan error, 1)}
	go func() {
		for {
			var d *workload.Delivery
			var ok bool
			select {
			case d, ok = <-sub.C():
			case <-pc.quit:
				pc.end <- nil
				return
			}
			if !ok {
				break
			}
			if d.Err != nil {
				if stopped.Load() {
					break
				}
				pc.end <- fmt.Errorf("bench: consumer: %w", d.Err)
				return
			}
			got()
			if err := sub.Ack(d); err != nil && !stopped.Load() {
				pc.end <- fmt.Errorf("bench: ack: %w", err)
				return
			}
		}
		pc.end <- nil
	}()
	return pc, nil
}

func (c *protocolConsumer) stop()              { close(c.quit) }
func (c *protocolConsumer) done() <-chan error { return c.end }
func (c *protocolConsumer) close()             { c.conn.Close(2 * time.Second) }

type protocolProducer struct {
	conn workload.Conn
	dest string
	id   string
	l    Load
}

func (c *protocolClient) producer(ctx context.Context, p int) (producer, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &protocolProducer{conn: conn, dest: c.l.Dest, id: "p" + strconv.Itoa(p), l: c.l}, nil
}

// send sends one message with a fresh id (a broker that deduplicates,
// JetStream, sees no repeat).
func (p *protocolProducer) send(body []byte, seq int) error {
	return p.conn.Send(p.dest, []workload.Outgoing{{
		Producer: p.id, Seq: uint64(seq), ID: p.id + "-" + strconv.Itoa(seq), Attempt: 1,
		TS: time.Now().UnixNano(), Body: body, Persistent: p.l.Persistent,
	}}, false)
}

func (p *protocolProducer) close() { p.conn.Close(2 * time.Second) }
