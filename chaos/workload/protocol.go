package workload

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
)

// Protocol is how the workload's clients speak to a broker: STOMP (this
// package), NATS JetStream (package jetstream) or AMQP 0-9-1 (package
// amqp). Producers, consumers, the history they write and the checker
// that reads it are the same for every protocol; only Conn differs.
type Protocol interface {
	// Name is the protocol's name in scenarios and results ("stomp").
	Name() string
	// Dial connects to ep within o.Timeout (and ctx).
	Dial(ctx context.Context, ep Endpoint, o DialOptions) (Conn, error)
}

// DialOptions are what a client asks of a connection.
type DialOptions struct {
	// Timeout bounds the connect and the protocol's handshake.
	Timeout time.Duration
	// SendTimeout bounds a Send's wait for its confirmation (SendWait).
	SendTimeout time.Duration
	// HeartBeat asks the broker for heart-beats this often (where the
	// protocol has them), so a dead or paused broker breaks the
	// connection. 0 disables.
	HeartBeat time.Duration
	// WriteTimeout bounds a blocked Ack.
	WriteTimeout time.Duration
	// Prefetch is a consumer's bound on unacknowledged deliveries (0:
	// the broker's or the protocol's default).
	Prefetch int
	// Login and Passcode authenticate when Login is set.
	Login, Passcode string
}

// defaultSendTimeout is a producer's SendTimeout when it sets none.
const defaultSendTimeout = 5 * time.Second

// SendWait is o.SendTimeout, or the producers' default (5 s) when it is
// not set: the bound of a protocol call that waits on the broker.
func (o DialOptions) SendWait() time.Duration { return orDefault(o.SendTimeout, defaultSendTimeout) }

// Conn is one connection to one broker. Send and Subscribe are called by
// one goroutine; a Subscription's Ack may run on another.
type Conn interface {
	// Send sends msgs to dest, as one transaction when tx is set, and
	// returns nil once the broker confirmed every one. An error wrapping
	// ErrRefused says the broker refused them and ErrNotSent that none
	// left the client; any other error leaves the outcome unknown (the
	// caller then drops the connection and retries with the same ids).
	Send(dest string, msgs []Outgoing, tx bool) error
	// Subscribe starts the deliveries of dest with ack (AckClientIndividual,
	// AckClient or AckAuto; a protocol may support only the first).
	Subscribe(dest, ack string) (Subscription, error)
	// Close disconnects politely, bounded by d.
	Close(d time.Duration)
	// Abort drops the connection at once: whatever is in flight fails.
	Abort()
}

// Subscription is one consumer's stream of deliveries on a Conn.
type Subscription interface {
	// C delivers the messages; it is closed, or delivers one with Err
	// set, when the subscription ends. Its buffered length tells how many
	// deliveries are waiting.
	C() <-chan *Delivery
	// Ack acknowledges d (in AckClient mode, d and every one before it).
	Ack(d *Delivery) error
}

// Outgoing is one message a producer sends; every protocol carries its
// fields to the consumer (as the headers of doc.go or their equivalent).
type Outgoing struct {
	Producer   string
	Seq        uint64
	ID         string // the message id; brokers that deduplicate use it
	Attempt    int    // the attempt, from 1 (a STOMP receipt names it)
	TS         int64  // unix nanoseconds of the first attempt (lb-ts)
	Body       []byte
	Persistent bool
}

// SetHeaders calls set with each of m's workload headers (doc.go):
// lb-producer, lb-seq, lb-id and lb-ts, in that order.
func (m *Outgoing) SetHeaders(set func(key, value string)) {
	set(HeaderProducer, m.Producer)
	set(HeaderSeq, strconv.FormatUint(m.Seq, 10))
	set(HeaderID, m.ID)
	set(HeaderTS, strconv.FormatInt(m.TS, 10))
}

// Delivery is one message a consumer received.
type Delivery struct {
	Dest     string
	Producer string
	ID       string
	Seq      uint64
	// TS is the lb-ts of the message (0 when absent).
	TS int64
	// Redelivered is the broker's word that it delivered the message
	// before (STOMP's redelivered header, AMQP's redelivered flag, a
	// JetStream delivery count above 1).
	Redelivered bool
	// Err, when set, ends the subscription: the connection failed.
	Err error
	// Handle is the protocol's own handle to acknowledge the message.
	Handle any
}

// ReadHeaders sets d's Producer, ID, Seq and TS from the workload headers
// get returns ("" for a missing one; an unparsable number reads 0).
func (d *Delivery) ReadHeaders(get func(key string) string) {
	d.Producer = get(HeaderProducer)
	d.ID = get(HeaderID)
	d.Seq, _ = strconv.ParseUint(get(HeaderSeq), 10, 64)
	d.TS, _ = strconv.ParseInt(get(HeaderTS), 10, 64)
}

// Errors a Conn's Send wraps to say what became of a send.
var (
	// ErrRefused: the broker answered that it did not take the messages.
	ErrRefused = errors.New("workload: refused by the broker")
	// ErrNotSent: the messages never left the client.
	ErrNotSent = errors.New("workload: not sent")
)

// Outcome maps a Send's error to the history's event type: ok for nil,
// fail for a refused or unsent message, unknown for anything else.
func Outcome(err error) (typ, why string) {
	switch {
	case err == nil:
		return history.OK, ""
	case errors.Is(err, ErrRefused), errors.Is(err, ErrNotSent):
		return history.Fail, err.Error()
	default:
		return history.Unknown, err.Error()
	}
}

// QueueName is the broker-side name of workload destination dest for
// protocols without STOMP's destinations: its last path element, every
// character outside [A-Za-z0-9_-] replaced by '_' ("/queue/lossbench" is
// "lossbench"; "_" for an empty one).
func QueueName(dest string) string {
	if i := strings.LastIndexByte(dest, '/'); i >= 0 {
		dest = dest[i+1:]
	}
	b := []byte(dest)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
