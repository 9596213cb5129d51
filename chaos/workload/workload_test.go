package workload

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/chaos/workload/fakebroker"
)

// broker is an in-process fakebroker whose connections a test can cut,
// standing in for a real broker.
type broker struct {
	addr string
	mu   sync.Mutex
	ln   net.Listener
	cs   []net.Conn
	dead bool
}

type trackLn struct {
	net.Listener
	b *broker
}

func (l trackLn) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if l.b.dead {
		c.Close()
		return c, nil
	}
	l.b.cs = append(l.b.cs, c)
	return c, nil
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{addr: ln.Addr().String(), ln: ln}
	go func() { _ = fakebroker.New().Serve(trackLn{ln, b}) }()
	t.Cleanup(b.crash)
	return b
}

// crash closes the listener and every connection, like a killed broker.
func (b *broker) crash() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dead = true
	b.ln.Close()
	for _, c := range b.cs {
		c.Close()
	}
	b.cs = nil
}

func newHistory(t *testing.T) (*history.Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	return h, path
}

func readHistory(t *testing.T, h *history.Writer, path string) []history.Event {
	t.Helper()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	ev, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// checkWellFormed asserts the history's send events pair up: every
// invoke is followed by exactly one outcome of the same id and attempt,
// attempts count up from 1, and every event names its process.
func checkWellFormed(t *testing.T, ev []history.Event) {
	t.Helper()
	type key struct {
		id      string
		attempt int
	}
	open := map[key]bool{}
	lastAttempt := map[string]int{}
	for i, e := range ev {
		if e.Time.IsZero() || e.Process == "" {
			t.Fatalf("event %d: no time or process: %+v", i, e)
		}
		k := key{e.ID, e.Attempt}
		switch e.Type {
		case history.Invoke:
			if open[k] {
				t.Fatalf("event %d: second invoke of %v", i, k)
			}
			if e.Attempt != lastAttempt[e.ID]+1 {
				t.Fatalf("event %d: attempt %d after %d for %s", i, e.Attempt, lastAttempt[e.ID], e.ID)
			}
			if e.Seq == 0 || e.Producer == "" || e.Node == "" {
				t.Fatalf("event %d: invoke without seq, producer or node: %+v", i, e)
			}
			lastAttempt[e.ID] = e.Attempt
			open[k] = true
		case history.OK, history.Fail, history.Unknown:
			if !open[k] {
				t.Fatalf("event %d: %s without invoke: %+v", i, e.Type, e)
			}
			delete(open, k)
		case history.Recv:
			if e.ID == "" || e.Producer == "" || e.Seq == 0 || e.LatencyNS <= 0 {
				t.Fatalf("event %d: recv without id, producer, seq or latency: %+v", i, e)
			}
		default:
			t.Fatalf("event %d: type %q", i, e.Type)
		}
	}
	for k := range open {
		t.Fatalf("invoke of %v has no outcome", k)
	}
}

func TestMessageID(t *testing.T) {
	if got := MessageID("r1", "p3", 123); got != "r1-p3-000000123" {
		t.Fatalf("MessageID = %q", got)
	}
	if got := MessageID("r", "p", 1234567890); got != "r-p-1234567890" {
		t.Fatalf("MessageID = %q", got)
	}
}

func TestProduceConsumeHistory(t *testing.T) {
	b := startBroker(t)
	h, path := newHistory(t)
	fo := Failover{Endpoints: []Endpoint{{Name: "b1", Addr: b.addr}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, err := NewConsumer(ConsumerConfig{ID: "c0", Dest: "/queue/t", Prefetch: 10, Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cstop := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()

	var ps []*Producer
	for i, tx := range []int{0, 5} {
		p, err := NewProducer(ProducerConfig{ID: []string{"p0", "p1"}[i], Run: "r", Dest: "/queue/t",
			Size: 100, TxSize: tx, MaxMessages: 100, Duration: 10 * time.Second, Failover: fo}, h)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func(p *Producer) {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				t.Error(err)
			}
		}(p)
	}
	wg.Wait()
	if !WaitQuiet(ctx, 300*time.Millisecond, 10*time.Second, c) {
		t.Fatal("consumer never went quiet")
	}
	cstop()
	if err := <-cdone; err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if s := p.Stats(); s.Acked != 100 || s.Messages != 100 {
			t.Fatalf("stats %+v", s)
		}
	}
	if got := c.Stats().Received; got != 200 {
		t.Fatalf("received %d, want 200", got)
	}
	ev := readHistory(t, h, path)
	checkWellFormed(t, ev)
	ids := map[string]int{}
	for _, e := range ev {
		if e.Type == history.Recv {
			ids[e.ID]++
			if !strings.HasPrefix(e.ID, "r-"+e.Producer+"-") || e.Node != "b1" || e.Dest != "/queue/t" {
				t.Fatalf("recv %+v", e)
			}
		}
	}
	if len(ids) != 200 {
		t.Fatalf("%d distinct ids received", len(ids))
	}
}

func TestProducerFailsOver(t *testing.T) {
	a, b := startBroker(t), startBroker(t)
	h, path := newHistory(t)
	fo := Failover{
		Endpoints:      []Endpoint{{Name: "a", Addr: a.addr}, {Name: "b", Addr: b.addr}},
		ConnectTimeout: 500 * time.Millisecond, InitialBackoff: 10 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := NewProducer(ProducerConfig{ID: "p0", Run: "r", Dest: "/queue/f", Size: 10,
		Rate: 500, Duration: 800 * time.Millisecond, Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		a.crash()
	}()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ev := readHistory(t, h, path)
	checkWellFormed(t, ev)
	okOn := map[string]int{}
	for _, e := range ev {
		if e.Type == history.OK {
			okOn[e.Node]++
		}
	}
	if okOn["a"] == 0 || okOn["b"] == 0 {
		t.Fatalf("acks by node %v: want some on a, then some on b", okOn)
	}
	if s := p.Stats(); s.Reconnects < 1 || s.Acked+s.Unknown+s.Failed < s.Messages {
		t.Fatalf("stats %+v", s)
	}
}

func TestConsumerFailsOver(t *testing.T) {
	a, b := startBroker(t), startBroker(t)
	h, path := newHistory(t)
	fo := Failover{Endpoints: []Endpoint{{Name: "a", Addr: a.addr}, {Name: "b", Addr: b.addr}},
		InitialBackoff: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := NewConsumer(ConsumerConfig{ID: "c0", Dest: "/queue/c", Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cstop := context.WithCancel(ctx)
	defer cstop()
	go func() { _ = c.Run(cctx) }()
	send := func(name, addr string, n uint64) {
		p, err := NewProducer(ProducerConfig{ID: name, Run: "r", Dest: "/queue/c", MaxMessages: n,
			Failover: Failover{Endpoints: []Endpoint{{Name: "x", Addr: addr}}}}, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	send("p0", a.addr, 10)
	WaitQuiet(ctx, 200*time.Millisecond, 5*time.Second, c)
	a.crash()
	send("p1", b.addr, 10)
	if !WaitQuiet(ctx, 200*time.Millisecond, 5*time.Second, c) {
		t.Fatal("not quiet")
	}
	cstop()
	ev := readHistory(t, h, path)
	checkWellFormed(t, ev)
	got := map[string]int{}
	for _, e := range ev {
		if e.Type == history.Recv {
			got[e.Node]++
		}
	}
	if got["a"] != 10 || got["b"] != 10 {
		t.Fatalf("recv by node %v, want 10 on a and 10 on b", got)
	}
	if c.Stats().Reconnects < 1 {
		t.Fatal("no reconnect")
	}
}

func TestUnknownIsRetriedWithSameID(t *testing.T) {
	// A listener that accepts STOMP CONNECT but never answers a SEND: the
	// send times out (unknown), the producer fails over to b and retries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 4096)
				n, _ := c.Read(buf) // CONNECT
				if n > 0 {
					_, _ = c.Write([]byte("CONNECTED\nversion:1.2\n\n\x00"))
				}
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	b := startBroker(t)
	h, path := newHistory(t)
	fo := Failover{Endpoints: []Endpoint{{Name: "mute", Addr: ln.Addr().String()}, {Name: "b", Addr: b.addr}}}
	p, err := NewProducer(ProducerConfig{ID: "p0", Run: "r", Dest: "/queue/u", MaxMessages: 1,
		SendTimeout: 200 * time.Millisecond, MaxAttempts: 2, Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	// The mute endpoint is first in the list, so the retry also goes there
	// unless it is gone: close it once the first attempt is under way.
	go func() {
		time.Sleep(100 * time.Millisecond)
		ln.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ev := readHistory(t, h, path)
	checkWellFormed(t, ev)
	var types []string
	for _, e := range ev {
		if e.ID != "r-p0-000000001" {
			t.Fatalf("event for another id: %+v", e)
		}
		types = append(types, e.Type+"@"+e.Node)
	}
	want := "invoke@mute unknown@mute invoke@b ok@b"
	if strings.Join(types, " ") != want {
		t.Fatalf("history %v, want %s", types, want)
	}
}

func TestClassify(t *testing.T) {
	withReceipt := stomp.Error{Message: "no", Frame: frame.New(frame.ERROR, frame.Message, "no", frame.ReceiptId, "x")}
	synthetic := stomp.Error{Message: "connection closed", Frame: frame.New(frame.ERROR, frame.Message, "connection closed")}
	for _, c := range []struct {
		err    error
		before bool
		want   string
	}{
		{withReceipt, false, history.Fail},
		{synthetic, false, history.Unknown},
		{errors.New("i/o timeout"), false, history.Unknown},
		{stomp.ErrAlreadyClosed, false, history.Fail},
		{synthetic, true, history.Fail},
	} {
		if got, _ := Outcome(classify(c.err, c.before)); got != c.want {
			t.Errorf("classify(%v, %v) = %s, want %s", c.err, c.before, got, c.want)
		}
	}
}

func TestRateIsHonoured(t *testing.T) {
	b := startBroker(t)
	h, _ := newHistory(t)
	defer h.Close()
	p, err := NewProducer(ProducerConfig{ID: "p0", Run: "r", Dest: "/queue/r", Rate: 100,
		Duration: 500 * time.Millisecond, Failover: Failover{Endpoints: []Endpoint{{Addr: b.addr}}}}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := p.Stats().Acked; n < 25 || n > 75 {
		t.Fatalf("acked %d in 0.5s at 100/s", n)
	}
}

func TestProducerNeedsABound(t *testing.T) {
	_, err := NewProducer(ProducerConfig{ID: "p0", Dest: "/q", Failover: Failover{Endpoints: []Endpoint{{Addr: "x"}}}}, nil)
	if err == nil {
		t.Fatal("unbounded producer accepted")
	}
}

// TestManyInFlightDoesNotDeadlock guards against go-stomp's deadlock of an
// ACK behind a MESSAGE when more messages are in flight than its write
// queue holds (the broker's default prefetch here is 1000).
func TestManyInFlightDoesNotDeadlock(t *testing.T) {
	b := startBroker(t)
	h, _ := newHistory(t)
	defer h.Close()
	fo := Failover{Endpoints: []Endpoint{{Addr: b.addr}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := NewProducer(ProducerConfig{ID: "p0", Run: "r", Dest: "/queue/d", MaxMessages: 3000, Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(ConsumerConfig{ID: "c0", Dest: "/queue/d", Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cstop := context.WithCancel(ctx)
	defer cstop()
	go func() { _ = c.Run(cctx) }()
	WaitQuiet(ctx, 300*time.Millisecond, 10*time.Second, c)
	if got := c.Stats().Received; got != 3000 {
		t.Fatalf("received %d of 3000", got)
	}
}

// TestConsumerBacksOffWhenRefused: a broker that accepts connections but
// answers every SUBSCRIBE with an ERROR (a standby, a broker starting)
// must not make the consumer reconnect at full speed: it pauses between
// sessions that delivered nothing, doubling up to MaxBackoff.
func TestConsumerBacksOffWhenRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	accepted := 0
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			go func() {
				defer nc.Close()
				r, w := frame.NewReader(nc), frame.NewWriter(nc)
				for {
					f, err := r.Read()
					if err != nil {
						return
					}
					if f == nil {
						continue // a heart-beat
					}
					switch f.Command {
					case frame.CONNECT, frame.STOMP:
						_ = w.Write(frame.New(frame.CONNECTED, frame.Version, "1.2"))
					case frame.SUBSCRIBE:
						_ = w.Write(frame.New(frame.ERROR, frame.Message, "not the master"))
						return
					}
				}
			}()
		}
	}()
	h, _ := newHistory(t)
	fo := Failover{Endpoints: []Endpoint{{Name: "a", Addr: ln.Addr().String()}},
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	c, err := NewConsumer(ConsumerConfig{ID: "c0", Dest: "/queue/r", Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := accepted
	mu.Unlock()
	// Pauses of 20, 40, 80, 160, 200, 200... ms fit at most about 8
	// sessions in a second; without them it is hundreds. A slower machine
	// only makes fewer.
	if n < 2 || n > 12 {
		t.Fatalf("%d connections in 1 s to a broker refusing subscriptions, want between 2 and 12", n)
	}
}
