package server

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/store/memstore"
)

// These tests drive the broker through go-stomp, a client nobody here wrote.

func TestSendReceive(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/a", "one", "x-custom", "a:b\nc")
	if err := p.Send("/queue/a", "text/plain", []byte("two"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if d, _ := queueDepth(b, "/queue/a"); d != 2 {
		t.Fatalf("depth %d after two receipted sends, want 2", d)
	}
	c := dial(t, addr)
	s, err := c.Subscribe("/queue/a", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, s)
	if string(m.Body) != "one" || m.Destination != "/queue/a" || m.Header.Get("x-custom") != "a:b\nc" ||
		m.Header.Get("persistent") != "true" {
		t.Fatalf("got %q %q %v", m.Body, m.Destination, m.Header)
	}
	if id := m.Header.Get("message-id"); id != "ID:refbroker-1" {
		t.Fatalf("message-id %q, want ID:refbroker-1", id)
	}
	if m2 := recv(t, s); string(m2.Body) != "two" || m2.Header.Get("persistent") != "" {
		t.Fatalf("second message %q %v", m2.Body, m2.Header)
	}
	poll(t, "auto acks", func() bool { d, in := queueDepth(b, "/queue/a"); return d == 0 && in == 0 })
}

func TestFIFOAndRoundRobin(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	c1, c2 := dial(t, addr), dial(t, addr)
	s1, err := c1.Subscribe("/queue/rr", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := c2.Subscribe("/queue/rr", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "two consumers", func() bool { return consumers(b, "/queue/rr") == 2 })
	for i := range 10 {
		sendP(t, p, "/queue/rr", fmt.Sprint(i))
	}
	var got1, got2 []string
	for range 5 {
		m := recv(t, s1)
		got1 = append(got1, string(m.Body))
		c1.Ack(m)
		m = recv(t, s2)
		got2 = append(got2, string(m.Body))
		c2.Ack(m)
	}
	even, odd := []string{"0", "2", "4", "6", "8"}, []string{"1", "3", "5", "7", "9"}
	if got1[0] == "1" {
		even, odd = odd, even
	}
	if !reflect.DeepEqual(got1, even) || !reflect.DeepEqual(got2, odd) {
		t.Fatalf("round robin gave %v and %v", got1, got2)
	}
}

func TestPrefetch(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	for _, hdr := range []string{HeaderPrefetch, HeaderPrefetchAMQ} {
		t.Run(hdr, func(t *testing.T) {
			poll(t, "no consumers", func() bool { return consumers(b, "/queue/pf") == 0 })
			for i := range 5 {
				sendP(t, p, "/queue/pf", fmt.Sprint(i))
			}
			c := dial(t, addr)
			s, err := c.Subscribe("/queue/pf", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header(hdr, "2"))
			if err != nil {
				t.Fatal(err)
			}
			a, bb := recv(t, s), recv(t, s)
			poll(t, "two in flight", func() bool { _, in := queueDepth(b, "/queue/pf"); return in == 2 })
			if d, _ := queueDepth(b, "/queue/pf"); d != 3 {
				t.Fatalf("depth %d with prefetch 2, want 3", d)
			}
			c.Ack(a)
			for range 3 {
				m := recv(t, s)
				c.Ack(bb)
				bb = m
			}
			c.Ack(bb)
			poll(t, "drained", func() bool { d, in := queueDepth(b, "/queue/pf"); return d == 0 && in == 0 })
		})
	}
}

func TestAckClientCumulative(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	for i := range 3 {
		sendP(t, p, "/queue/c", fmt.Sprint(i))
	}
	c := dial(t, addr)
	s, err := c.Subscribe("/queue/c", gostomp.AckClient)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, s)
	recv(t, s)
	third := recv(t, s)
	if err := c.Ack(third); err != nil { // acks all three
		t.Fatal(err)
	}
	poll(t, "cumulative ack", func() bool { d, in := queueDepth(b, "/queue/c"); return d == 0 && in == 0 })
}

func TestAckClientIndividualRedelivery(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	for i := range 3 {
		sendP(t, p, "/queue/ci", fmt.Sprint(i))
	}
	c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Subscribe("/queue/ci", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m0, _, m2 := recv(t, s), recv(t, s), recv(t, s)
	c.Ack(m0)
	c.Ack(m2)
	poll(t, "two acks", func() bool { _, in := queueDepth(b, "/queue/ci"); return in == 1 })
	if err := c.Disconnect(); err != nil { // the consumer goes away with "1" unacked
		t.Fatal(err)
	}
	c2 := dial(t, addr)
	s2, err := c2.Subscribe("/queue/ci", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, s2)
	if string(m.Body) != "1" || m.Header.Get("redelivered") != "true" {
		t.Fatalf("redelivery %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
	}
	c2.Ack(m)
	poll(t, "drained", func() bool { d, in := queueDepth(b, "/queue/ci"); return d == 0 && in == 0 })
}

func TestNackRedelivers(t *testing.T) {
	_, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/n", "first")
	sendP(t, p, "/queue/n", "second")
	c := dial(t, addr)
	s, err := c.Subscribe("/queue/n", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header(HeaderPrefetch, "1"))
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, s)
	if string(m.Body) != "first" || m.Header.Get("redelivered") != "" {
		t.Fatalf("got %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
	}
	if err := c.Nack(m); err != nil {
		t.Fatal(err)
	}
	m = recv(t, s) // handed back ahead of "second"
	if string(m.Body) != "first" || m.Header.Get("redelivered") != "true" {
		t.Fatalf("after NACK got %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
	}
	c.Ack(m)
	if m = recv(t, s); string(m.Body) != "second" {
		t.Fatalf("got %q, want second", m.Body)
	}
	c.Ack(m)
}

// TestUnsubscribeRedelivers uses a raw connection: go-stomp's Unsubscribe
// can miss the RECEIPT's wake-up when it arrives fast and then waits 30s.
func TestUnsubscribeRedelivers(t *testing.T) {
	_, addr := startBroker(t, nil, Options{})
	r := rawDial(t, addr)
	r.connect()
	r.write("SEND\ndestination:/queue/u\npersistent:true\n\nm\x00")
	r.write("SUBSCRIBE\nid:s1\ndestination:/queue/u\nack:client\n\n\x00")
	if m := r.expect("MESSAGE"); string(m.Body) != "m" || m.Get("subscription") != "s1" {
		t.Fatalf("got %v %q", m.Headers, m.Body)
	}
	r.write("UNSUBSCRIBE\nid:s1\nreceipt:u\n\n\x00")
	r.expect("RECEIPT")
	r.write("SUBSCRIBE\nid:s2\ndestination:/queue/u\nack:client\n\n\x00")
	if m := r.expect("MESSAGE"); string(m.Body) != "m" || m.Get("redelivered") != "true" || m.Get("subscription") != "s2" {
		t.Fatalf("got %v %q", m.Headers, m.Body)
	}
}

func TestTransactions(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	tx := p.Begin()
	tx.Send("/queue/t", "text/plain", []byte("aborted"), gostomp.SendOpt.Header("persistent", "true"))
	if err := tx.AbortWithReceipt(); err != nil {
		t.Fatal(err)
	}
	tx = p.Begin()
	tx.Send("/queue/t", "text/plain", []byte("c1"), gostomp.SendOpt.Header("persistent", "true"))
	tx.Send("/queue/t", "text/plain", []byte("c2"))
	if d, _ := queueDepth(b, "/queue/t"); d != 0 {
		t.Fatalf("uncommitted sends visible: depth %d", d)
	}
	if err := tx.CommitWithReceipt(); err != nil {
		t.Fatal(err)
	}
	if d, _ := queueDepth(b, "/queue/t"); d != 2 {
		t.Fatalf("depth %d after commit, want 2", d)
	}
	c := dial(t, addr)
	s, err := c.Subscribe("/queue/t", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	if got := recvBodies(t, s, 2); !reflect.DeepEqual(got, []string{"c1", "c2"}) {
		t.Fatalf("got %v", got)
	}
}

func TestTransactionalAck(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/ta", "x")
	c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Subscribe("/queue/ta", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, s)
	tx := c.Begin()
	tx.Ack(m)
	if err := tx.AbortWithReceipt(); err != nil { // the ack is undone
		t.Fatal(err)
	}
	c.Disconnect()
	c2 := dial(t, addr)
	s2, err := c2.Subscribe("/queue/ta", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	m = recv(t, s2)
	if string(m.Body) != "x" || m.Header.Get("redelivered") != "true" {
		t.Fatalf("got %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
	}
	tx = c2.Begin()
	tx.Ack(m)
	if _, in := queueDepth(b, "/queue/ta"); in != 1 {
		t.Fatalf("inflight %d before commit, want 1", in)
	}
	if err := tx.CommitWithReceipt(); err != nil {
		t.Fatal(err)
	}
	if d, in := queueDepth(b, "/queue/ta"); d != 0 || in != 0 {
		t.Fatalf("depth %d inflight %d after commit", d, in)
	}
}

func TestHeartBeats(t *testing.T) {
	// Heart-beats every 50ms, and each side drops the other after 1s of
	// silence: a loaded machine (a load of 15 on 2 cores was seen) delays
	// them by far more than the 40ms this test once allowed, and 1.5s of
	// idleness is still past the limit, so without heart-beats it fails.
	b, addr := startBroker(t, nil, Options{HeartbeatSend: 50 * time.Millisecond, HeartbeatReceive: 50 * time.Millisecond, HeartbeatGrace: 20})
	c := dial(t, addr, gostomp.ConnOpt.HeartBeat(50*time.Millisecond, 50*time.Millisecond),
		gostomp.ConnOpt.HeartBeatError(950*time.Millisecond))
	s, err := c.Subscribe("/queue/hb", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	// Stay idle for many heart-beat periods: both sides must keep the
	// other alive. The broker counts no timeouts, and the connection works.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case m := <-s.C:
			t.Fatalf("unexpected message or error: %v", m.Err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	sendP(t, c, "/queue/hb", "alive")
	if m := recv(t, s); string(m.Body) != "alive" {
		t.Fatalf("got %q", m.Body)
	}
	if n := b.Metrics().Errors; n != 0 {
		t.Fatalf("%d ERROR frames sent", n)
	}
}

func TestHeartBeatSilentClientDropped(t *testing.T) {
	_, addr := startBroker(t, nil, Options{HeartbeatReceive: 50 * time.Millisecond, HeartbeatGrace: 2})
	r := rawDial(t, addr)
	// The broker's deadline runs from its read of CONNECT, which cannot
	// come before this write: start the clock first.
	start := time.Now()
	r.write("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:50,0\n\n\x00")
	f := r.expect("CONNECTED")
	if hb := f.Get("heart-beat"); hb != "10000,50" {
		t.Fatalf("heart-beat %q", hb)
	}
	// The client promised a heart-beat every 50ms and sends nothing.
	if f := r.read(); f != nil && f.Command != "ERROR" {
		t.Fatalf("got %s", f.Command)
	}
	r.expectClosed()
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("dropped before the grace period")
	}
}

func TestDisconnectReceipt(t *testing.T) {
	_, addr := startBroker(t, nil, Options{})
	r := rawDial(t, addr)
	r.connect()
	r.write("DISCONNECT\nreceipt:bye\n\n\x00")
	if f := r.expect("RECEIPT"); f.Get("receipt-id") != "bye" {
		t.Fatalf("receipt-id %q", f.Get("receipt-id"))
	}
	r.expectClosed()
}

func TestLogin(t *testing.T) {
	_, addr := startBroker(t, nil, Options{Login: "u", Passcode: "p"})
	if c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Login("u", "wrong"), gostomp.ConnOpt.Logger(quietLogger{})); err == nil {
		c.MustDisconnect()
		t.Fatal("connected with a wrong passcode")
	}
	c := dial(t, addr, gostomp.ConnOpt.Login("u", "p"))
	sendP(t, c, "/queue/l", "ok")
}

// TestPasscodeWithoutLogin: a passcode alone still has to be given.
func TestPasscodeWithoutLogin(t *testing.T) {
	_, addr := startBroker(t, nil, Options{Passcode: "p"})
	r := rawDial(t, addr)
	r.write("CONNECT\naccept-version:1.2\nhost:test\n\n\x00")
	if f := r.expect("ERROR"); f.Get("message") != "access refused" {
		t.Fatalf("ERROR %v", f.Headers)
	}
	dial(t, addr, gostomp.ConnOpt.Login("", "p"))
}

// TestPersistentRecovery restarts a broker on the same store: persistent
// messages come back with the same message-id, non-persistent ones do not.
func TestPersistentRecovery(t *testing.T) {
	st := memstore.New()
	b := New(st, Options{Logf: testLogf(t)})
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go b.Serve(ln)
	p := dial(t, ln.Addr().String())
	sendP(t, p, "/queue/r", "kept-1")
	if err := p.Send("/queue/r", "", []byte("lost"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	sendP(t, p, "/queue/r", "kept-2")
	c := dial(t, ln.Addr().String())
	s, _ := c.Subscribe("/queue/r", gostomp.AckClientIndividual)
	first := recv(t, s) // delivered, never acked
	p.MustDisconnect()
	c.MustDisconnect()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, addr := startBroker(t, st, Options{})
	c2 := dial(t, addr)
	s2, _ := c2.Subscribe("/queue/r", gostomp.AckClientIndividual)
	m1, m2 := recv(t, s2), recv(t, s2)
	if string(m1.Body) != "kept-1" || string(m2.Body) != "kept-2" {
		t.Fatalf("recovered %q, %q", m1.Body, m2.Body)
	}
	if m1.Header.Get("message-id") != first.Header.Get("message-id") {
		t.Fatalf("message-id changed across restart: %q then %q", first.Header.Get("message-id"), m1.Header.Get("message-id"))
	}
}

func TestDedup(t *testing.T) {
	st := memstore.New()
	b, addr := startBroker(t, st, Options{})
	p := dial(t, addr)
	sendP(t, p, "/queue/d", "a", HeaderDedup, "p1-1")
	sendP(t, p, "/queue/d", "a", HeaderDedup, "p1-1") // a retry: receipted, not stored
	sendP(t, p, "/queue/d", "b", HeaderDedup, "p1-2")
	if d, _ := queueDepth(b, "/queue/d"); d != 2 {
		t.Fatalf("depth %d, want 2", d)
	}
	if n := st.Stats()["live_messages"]; n != 2 {
		t.Fatalf("store holds %v messages, want 2", n)
	}
	if n := b.Metrics().Duplicates; n != 1 {
		t.Fatalf("duplicates %d", n)
	}
	p.MustDisconnect()
	// The window survives a restart: it is rebuilt from stored headers.
	b2 := New(st, Options{Logf: testLogf(t)})
	if err := b2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go b2.Serve(ln)
	t.Cleanup(func() { b2.Shutdown(context.Background()) })
	p2 := dial(t, ln.Addr().String())
	sendP(t, p2, "/queue/d", "b", HeaderDedup, "p1-2")
	if n := st.Stats()["live_messages"]; n != 2 {
		t.Fatalf("store holds %v messages after retry across restart, want 2", n)
	}
}

func TestDedupWindowBounded(t *testing.T) {
	w := newDedupWindow(3)
	claim := func(id string) bool {
		sends := []pendingSend{{msg: &message{dest: "/queue/w", dedupID: id}}}
		if i, err := w.claim(sends, nil); i >= 0 || err != nil {
			t.Fatalf("claim %s: conflict %d, %v", id, i, err)
		}
		return sends[0].dup
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if claim(id) {
			t.Fatalf("%s seen as dup", id)
		}
	}
	if w.size() != 3 {
		t.Fatalf("window holds %d", w.size())
	}
	if claim("a") {
		t.Fatal("evicted id still known")
	}
	if !claim("d") {
		t.Fatal("recent id forgotten")
	}
}

// TestPagedBodies keeps bodies in memory only up to half of MaxMemory:
// the broker loads the others from the store at dispatch and delivers
// them intact.
func TestPagedBodies(t *testing.T) {
	const max = 32 << 10
	st := memstore.New()
	b, addr := startBroker(t, st, Options{MaxMemory: max})
	p := dial(t, addr)
	for i := range 20 {
		sendP(t, p, "/queue/big", fmt.Sprintf("%02d-%s", i, string(make([]byte, 997))))
	}
	if mem := b.Metrics().MemoryBytes; mem > max/2 || mem >= 20*1000 {
		t.Fatalf("%d bytes of bodies in memory, want at most half of max-memory %d", mem, max)
	}
	c := dial(t, addr)
	s, _ := c.Subscribe("/queue/big", gostomp.AckAuto)
	for i := range 20 {
		m := recv(t, s)
		if want := fmt.Sprintf("%02d-%s", i, string(make([]byte, 997))); string(m.Body) != want {
			t.Fatalf("message %d body %q", i, m.Body)
		}
	}
	poll(t, "all acked", func() bool { return st.Stats()["live_messages"] == 0 })
	if mem := b.Metrics().MemoryBytes; mem != 0 {
		t.Fatalf("%d bytes still accounted", mem)
	}
}
