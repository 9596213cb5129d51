package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// STOMP is the STOMP 1.0-1.2 protocol (go-stomp): a SEND is confirmed by
// its RECEIPT, a transaction by its COMMIT's; a MESSAGE is acknowledged by
// ACK. Versions are offered on CONNECT; default 1.0, 1.1 and 1.2 (the
// broker picks the highest it speaks).
type STOMP struct {
	Versions []stomp.Version
}

// Name is "stomp".
func (STOMP) Name() string { return "stomp" }

// Dial connects and sends CONNECT.
func (p STOMP) Dial(ctx context.Context, ep Endpoint, o DialOptions) (Conn, error) {
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(o.Timeout))
	opts := []func(*stomp.Conn) error{
		stomp.ConnOpt.Logger(quietLogger{}),
		stomp.ConnOpt.MsgSendTimeout(0),
		// go-stomp's connection goroutine blocks handing a MESSAGE to the
		// subscription while an ACK waits for room in its write queue:
		// with more messages in flight than that queue holds, the two
		// deadlock. A write queue larger than any prefetch keeps ACKs from
		// waiting.
		stomp.ConnOpt.WriteChannelCapacity(max(1<<16, 2*o.Prefetch)),
	}
	// go-stomp's Send holds the connection's lock while it waits for the
	// receipt, and its reader takes that lock on its way out when the
	// connection breaks: a deadline on the socket alone deadlocks the two.
	// Its own receipt timeout makes Send return (an unknown outcome); its
	// default (30 s) bounds every connection that sets none.
	if o.SendTimeout > 0 {
		opts = append(opts, stomp.ConnOpt.RcvReceiptTimeout(o.SendTimeout))
	}
	if o.HeartBeat > 0 {
		opts = append(opts, stomp.ConnOpt.HeartBeat(0, o.HeartBeat), stomp.ConnOpt.HeartBeatError(o.HeartBeat))
	} else {
		opts = append(opts, stomp.ConnOpt.HeartBeat(0, 0))
	}
	if len(p.Versions) > 0 {
		opts = append(opts, stomp.ConnOpt.AcceptVersion(p.Versions...))
	}
	if o.Login != "" {
		opts = append(opts, stomp.ConnOpt.Login(o.Login, o.Passcode))
	}
	conn, err := stomp.Connect(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", ep.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &stompConn{conn: conn, nc: nc, o: o, done: make(chan struct{})}, nil
}

// stompConn is one live STOMP connection.
type stompConn struct {
	conn *stomp.Conn
	nc   net.Conn
	o    DialOptions

	once sync.Once
	done chan struct{} // closed by Close and Abort
	wdl  time.Time     // the Ack write deadline; the acking goroutine's
}

func (s *stompConn) end() { s.once.Do(func() { close(s.done) }) }

// Abort drops the connection at once, without DISCONNECT.
func (s *stompConn) Abort() {
	s.end()
	_ = s.nc.Close()
}

// Close disconnects politely, bounded by d.
func (s *stompConn) Close(d time.Duration) {
	s.end()
	_ = s.nc.SetDeadline(time.Now().Add(d))
	_ = s.conn.Disconnect()
	_ = s.nc.Close()
}

// Send sends one message and waits for its receipt, or msgs in one
// transaction acknowledged by the COMMIT's receipt, bounded by the send
// timeout through the connection's deadline.
func (s *stompConn) Send(dest string, msgs []Outgoing, tx bool) error {
	_ = s.nc.SetDeadline(time.Now().Add(s.o.SendTimeout))
	if !tx {
		if len(msgs) != 1 {
			return fmt.Errorf("%w: stomp: %d messages outside a transaction", ErrNotSent, len(msgs))
		}
		m := &msgs[0]
		receipt := m.ID + "#" + strconv.Itoa(max(m.Attempt, 1))
		if err := s.conn.Send(dest, "", m.Body, stompHeaders(m, receipt)); err != nil {
			return classify(err, false)
		}
	} else {
		t, err := s.conn.BeginWithError()
		if err != nil {
			return classify(err, true)
		}
		for i := range msgs {
			if err := t.Send(dest, "", msgs[i].Body, stompHeaders(&msgs[i], "")); err != nil {
				return classify(err, true)
			}
		}
		if err := t.CommitWithReceipt(); err != nil {
			return classify(err, false)
		}
	}
	_ = s.nc.SetDeadline(time.Time{})
	return nil
}

// stompHeaders is the SEND option that sets m's headers (doc.go) and its
// receipt request.
func stompHeaders(m *Outgoing, receipt string) func(*frame.Frame) error {
	persistent := "true"
	if !m.Persistent {
		persistent = "false"
	}
	return func(f *frame.Frame) error {
		m.SetHeaders(f.Header.Add)
		f.Header.Add(HeaderDedup, m.ID)
		f.Header.Add("persistent", persistent)
		if receipt != "" {
			f.Header.Set(frame.Receipt, receipt)
		}
		return nil
	}
}

// classify wraps a send error with what became of the send. Only an ERROR
// frame that answers a receipt (it carries receipt-id) says the broker
// refused the send; go-stomp reports a broken connection as an ERROR frame
// of its own without one, and that leaves the outcome unknown.
// beforeCommit is set for errors before a transaction's COMMIT was
// written: the broker drops an uncommitted transaction, so nothing was
// stored.
func classify(err error, beforeCommit bool) error {
	if beforeCommit {
		return fmt.Errorf("%w: transaction not committed: %w", ErrNotSent, err)
	}
	if errors.Is(err, stomp.ErrAlreadyClosed) {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	var se stomp.Error
	if errors.As(err, &se) && se.Frame != nil && se.Frame.Command == frame.ERROR {
		if _, ok := se.Frame.Header.Contains(frame.ReceiptId); ok {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	return err
}

// Subscribe sends SUBSCRIBE with ack and, when a prefetch is set,
// activemq.prefetchSize and prefetch-count.
func (s *stompConn) Subscribe(dest, ack string) (Subscription, error) {
	var mode stomp.AckMode
	switch ack {
	case "", AckClientIndividual:
		mode = stomp.AckClientIndividual
	case AckClient:
		mode = stomp.AckClient
	case AckAuto:
		mode = stomp.AckAuto
	default:
		return nil, fmt.Errorf("workload: stomp: ack mode %q: want %s, %s or %s", ack, AckClientIndividual, AckClient, AckAuto)
	}
	var opts []func(*frame.Frame) error
	if s.o.Prefetch > 0 {
		n := strconv.Itoa(s.o.Prefetch)
		opts = append(opts, stomp.SubscribeOpt.Header("activemq.prefetchSize", n),
			stomp.SubscribeOpt.Header("prefetch-count", n))
	}
	sub, err := s.conn.Subscribe(dest, mode, opts...)
	if err != nil {
		return nil, err
	}
	ss := &stompSub{s: s, c: make(chan *Delivery, 16)}
	go ss.pump(sub)
	return ss, nil
}

// stompSub hands go-stomp's MESSAGEs on as Deliveries.
type stompSub struct {
	s *stompConn
	c chan *Delivery
}

func (ss *stompSub) C() <-chan *Delivery { return ss.c }

func (ss *stompSub) pump(sub *stomp.Subscription) {
	defer close(ss.c)
	for {
		var m *stomp.Message
		var ok bool
		select {
		case m, ok = <-sub.C:
		case <-ss.s.done:
			return
		}
		if !ok {
			return
		}
		d := &Delivery{Dest: m.Destination, Err: m.Err, Handle: m}
		if h := m.Header; h != nil && m.Err == nil {
			d.ReadHeaders(h.Get)
			d.Redelivered = h.Get("redelivered") == "true"
		}
		select {
		case ss.c <- d:
		case <-ss.s.done:
			return
		}
		if m.Err != nil {
			return
		}
	}
}

// Ack writes d's ACK; a write blocked longer than the write timeout fails.
func (ss *stompSub) Ack(d *Delivery) error {
	m, ok := d.Handle.(*stomp.Message)
	if !ok {
		return errors.New("workload: stomp: not a STOMP delivery")
	}
	if t := ss.s.o.WriteTimeout; t > 0 && time.Until(ss.s.wdl) < t/2 {
		ss.s.wdl = time.Now().Add(t)
		_ = ss.s.nc.SetWriteDeadline(ss.s.wdl)
	}
	return ss.s.conn.Ack(m)
}

// quietLogger drops go-stomp's log lines: the history says what happened.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...interface{})   {}
func (quietLogger) Infof(string, ...interface{})    {}
func (quietLogger) Warningf(string, ...interface{}) {}
func (quietLogger) Errorf(string, ...interface{})   {}
func (quietLogger) Debug(string)                    {}
func (quietLogger) Info(string)                     {}
func (quietLogger) Warning(string)                  {}
func (quietLogger) Error(string)                    {}
