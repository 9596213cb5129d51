package server

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/stomp"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// TestMessageOverhead: what a queued message really costs on the heap
// beyond its body and header strings stays within messageOverhead, so
// MaxMemory, which charges messageOverhead, bounds the heap.
func TestMessageOverhead(t *testing.T) {
	b := New(memstore.New(), Options{})
	const n = 20_000
	sends := make([]pendingSend, 0, 100)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var content int64
	for i := range n {
		m := &message{dest: "/queue/overhead", headers: []store.Header{{Key: HeaderDedup, Value: "d-" + strconv.Itoa(i)}}, body: make([]byte, 16), size: 16}
		m.dedupID = m.headers[0].Value
		content += m.metaBytes() - messageOverhead + int64(m.size)
		sends = append(sends, pendingSend{msg: m})
		if len(sends) == cap(sends) {
			if err := b.commit(sends, nil); err != nil {
				t.Fatal(err)
			}
			sends = sends[:0]
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc-before.HeapAlloc) - content) / n
	t.Logf("%d bytes a message beyond body and headers (messageOverhead %d)", per, messageOverhead)
	if per > messageOverhead {
		t.Errorf("a message costs %d bytes beyond its body and headers, more than messageOverhead %d", per, messageOverhead)
	}
	if d, _ := queueDepth(b, "/queue/overhead"); d != n {
		t.Fatalf("depth %d", d)
	}
	runtime.KeepAlive(b)
}

// sendBody is one receipted 1 KiB SEND of message i to dest.
func sendBody(dest string, i int, persistent bool) string {
	return fmt.Sprintf("SEND\ndestination:%s\npersistent:%v\nreceipt:%d\ncontent-length:1024\n\n%s\x00",
		dest, persistent, i, fmt.Sprintf("%04d", i)+strings.Repeat(".", 1020))
}

// drainBodies subscribes to dest with auto ack and returns the first four
// characters (the index) of n bodies.
func drainBodies(t *testing.T, addr, dest string, n int) []string {
	t.Helper()
	c := dial(t, addr)
	s, err := c.Subscribe(dest, gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, body := range recvBodies(t, s, n) {
		if len(body) != 1024 {
			t.Fatalf("body of %d bytes", len(body))
		}
		got = append(got, body[:4])
	}
	return got
}

// TestMemoryFlowControlHolds: non-persistent messages with no consumer
// fill MaxMemory, overhead included; then the producer's next SEND is
// held, unreceipted, until a consumer frees memory, and every message
// arrives.
func TestMemoryFlowControlHolds(t *testing.T) {
	const max, total = 32 << 10, 60
	b, addr := startBroker(t, nil, Options{MaxMemory: max, MemoryWait: time.Minute})
	r := rawDial(t, addr)
	r.connect()
	var receipted atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := io.WriteString(r.nc, sendBody("/queue/np", i, false)); err != nil {
				done <- err
				return
			}
			f, err := r.r.ReadFrame()
			if err != nil || f.Command != stomp.RECEIPT {
				done <- fmt.Errorf("send %d: %v %v", i, f, err)
				return
			}
			receipted.Add(1)
		}
		done <- nil
	}()
	poll(t, "a SEND held by flow control", func() bool { return b.Metrics().MemoryWaiting == 1 })
	cost := b.need(&message{dest: "/queue/np", size: 1024, headers: []store.Header{{Key: "persistent", Value: "false"}}})
	m := b.Metrics()
	k := receipted.Load()
	if m.MemoryHeld != k*cost || m.MemoryHeld > max || m.MemoryHeld+cost <= max {
		t.Fatalf("%d receipted of %d bytes each, %d bytes held: want exactly that, at most %d, and no room for one more", k, cost, m.MemoryHeld, max)
	}
	if m.MemoryBytes != k*1024 {
		t.Fatalf("%d body bytes held, want %d", m.MemoryBytes, k*1024)
	}
	if m.MemoryWaits != 1 || m.MemoryRefused != 0 {
		t.Fatalf("waits %d, refused %d", m.MemoryWaits, m.MemoryRefused)
	}

	got := drainBodies(t, addr, "/queue/np", total)
	for i, g := range got {
		if g != fmt.Sprintf("%04d", i) {
			t.Fatalf("message %d is %q", i, g)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	poll(t, "every acked message forgotten", func() bool { return b.Metrics().MemoryHeld == 0 })
}

// TestMemoryFlowControlRefuses: with no wait, the SEND past MaxMemory gets
// an ERROR and is not stored; every receipted message is delivered. A
// persistent message's body is paged out to the store first, so many
// more fit, but its metadata still counts and is bounded too.
func TestMemoryFlowControlRefuses(t *testing.T) {
	const max = 32 << 10
	fitted := map[bool]int{}
	for _, persistent := range []bool{false, true} {
		t.Run(fmt.Sprintf("persistent=%v", persistent), func(t *testing.T) {
			b, addr := startBroker(t, nil, Options{MaxMemory: max, MemoryWait: -1})
			r := rawDial(t, addr)
			r.connect()
			k := 0
			for ; ; k++ {
				if k > 1000 {
					t.Fatalf("%d messages of 1 KiB accepted under max-memory %d", k, max)
				}
				r.write(sendBody("/queue/full", k, persistent))
				if f := r.read(); f.Command != stomp.RECEIPT {
					if f.Command != stomp.ERROR || f.Get("message") != "memory limit reached" {
						t.Fatalf("send %d: %s %v %q", k, f.Command, f.Headers, f.Body)
					}
					r.expectClosed()
					break
				}
			}
			fitted[persistent] = k
			m := b.Metrics()
			if m.MemoryRefused != 1 || m.MemoryHeld > max || m.MemoryBytes > max {
				t.Fatalf("refused %d, held %d (bodies %d), max %d", m.MemoryRefused, m.MemoryHeld, m.MemoryBytes, max)
			}
			if d, _ := queueDepth(b, "/queue/full"); d != k {
				t.Fatalf("%d receipted, %d queued", k, d)
			}
			got := drainBodies(t, addr, "/queue/full", k)
			for i, g := range got {
				if g != fmt.Sprintf("%04d", i) {
					t.Fatalf("message %d is %q", i, g)
				}
			}
			poll(t, "every acked message forgotten", func() bool { return b.Metrics().MemoryHeld == 0 })
		})
	}
	if 2*fitted[true] <= 3*fitted[false] {
		t.Errorf("%d persistent messages fitted, %d non-persistent: paging bodies out should fit far more", fitted[true], fitted[false])
	}
	t.Logf("fitted under %d bytes: %d non-persistent, %d persistent (bodies paged)", max, fitted[false], fitted[true])
}

// TestMemoryAccountingBalances: persistent (paged and not) and
// non-persistent messages, NACKed into their DLQ, then consumed: every
// byte charged is given back.
func TestMemoryAccountingBalances(t *testing.T) {
	b, addr := startBroker(t, nil, Options{MaxMemory: 16 << 10, MaxRedeliveries: 1})
	r := rawDial(t, addr)
	r.connect()
	for i := range 12 {
		r.write(sendBody("/queue/bal", i, i%2 == 0))
		r.expect(stomp.RECEIPT)
	}
	if m := b.Metrics(); m.MemoryHeld == 0 || m.MemoryHeld > 16<<10 {
		t.Fatalf("%d bytes held", m.MemoryHeld)
	}
	n := rawDial(t, addr)
	n.connect()
	nackLoop(n, "/queue/bal", 24) // each delivered and redelivered once
	poll(t, "all in the DLQ", func() bool { d, _ := queueDepth(b, "/queue/DLQ.bal"); return d == 12 })
	if got := drainBodies(t, addr, "/queue/DLQ.bal", 12); len(got) != 12 {
		t.Fatalf("%d from the DLQ", len(got))
	}
	poll(t, "every byte given back", func() bool { m := b.Metrics(); return m.MemoryHeld == 0 && m.MemoryBytes == 0 })
}

// TestMemoryTransactionCounted: SENDs in an open transaction count under
// MaxMemory from the SEND on: past it the SEND is refused, and what the
// transaction held is given back at ABORT, at COMMIT (then held by the
// queue) and when its connection ends.
func TestMemoryTransactionCounted(t *testing.T) {
	const max = 32 << 10
	b, addr := startBroker(t, nil, Options{MaxMemory: max, MemoryWait: -1})
	cost := b.need(&message{dest: "/queue/tx", size: 1024, headers: []store.Header{{Key: "persistent", Value: "false"}}})
	r := rawDial(t, addr)
	r.connect()
	txSend := func(tx string, i int) {
		r.write(strings.Replace(sendBody("/queue/tx", i, false), "\n\n", "\ntransaction:"+tx+"\n\n", 1))
		r.expect(stomp.RECEIPT)
	}
	r.write("BEGIN\ntransaction:a\n\n\x00")
	for i := range 5 {
		txSend("a", i)
	}
	if m := b.Metrics(); m.MemoryHeld != 5*cost {
		t.Fatalf("open transaction of 5: %d bytes held, want %d", m.MemoryHeld, 5*cost)
	}
	r.write("ABORT\ntransaction:a\nreceipt:ab\n\n\x00")
	r.expect(stomp.RECEIPT)
	if m := b.Metrics(); m.MemoryHeld != 0 {
		t.Fatalf("after ABORT: %d bytes held", m.MemoryHeld)
	}
	r.write("BEGIN\ntransaction:b\n\n\x00")
	for i := range 5 {
		txSend("b", i)
	}
	r.write("COMMIT\ntransaction:b\nreceipt:cb\n\n\x00")
	r.expect(stomp.RECEIPT)
	if d, _ := queueDepth(b, "/queue/tx"); d != 5 || b.Metrics().MemoryHeld != 5*cost {
		t.Fatalf("after COMMIT: depth %d, %d bytes held, want 5 and %d", d, b.Metrics().MemoryHeld, 5*cost)
	}
	r.write("BEGIN\ntransaction:c\n\n\x00")
	k := 0
	for ; ; k++ {
		if k > 1000 {
			t.Fatalf("%d transactional SENDs of 1 KiB accepted under max-memory %d", k, max)
		}
		r.write(strings.Replace(sendBody("/queue/tx", k, false), "\n\n", "\ntransaction:c\n\n", 1))
		if f := r.read(); f.Command != stomp.RECEIPT {
			if f.Command != stomp.ERROR || f.Get("message") != "memory limit reached" {
				t.Fatalf("send %d: %s %v %q", k, f.Command, f.Headers, f.Body)
			}
			break
		}
	}
	if want := int((max - 5*cost) / cost); k != want {
		t.Fatalf("%d transactional SENDs fitted beside the queue's 5, want %d", k, want)
	}
	r.expectClosed()
	poll(t, "the closed connection's transaction given back", func() bool { return b.Metrics().MemoryHeld == 5*cost })
}
