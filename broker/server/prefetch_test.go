package server

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// go-stomp (v3) reads MESSAGE frames and writes ACK frames on one
// goroutine, with 20 frames of write queue and 16+1 messages of
// subscription buffer. A consumer that acks inline, as a naive user
// writes it, deadlocks once the broker has more unacknowledged messages
// in the client than those buffers hold: the goroutine blocks handing a
// MESSAGE to the full subscription channel while the user blocks queueing
// an ACK behind it. The broker's default prefetch must stay below that.

// backlogSize is the backlog the issue saw a go-stomp consumer stall on.
const backlogSize = 5000

// fillBacklog sends n persistent 1 KiB messages to dest, the last with a
// receipt, so that all are queued when it returns.
func fillBacklog(t testing.TB, addr, dest string, n int) {
	t.Helper()
	p := dial(t, addr)
	body := bytes.Repeat([]byte("x"), 1024)
	for i := range n {
		opts := []func(*frame.Frame) error{gostomp.SendOpt.Header("persistent", "true")}
		if i == n-1 {
			opts = append(opts, gostomp.SendOpt.Receipt)
		}
		if err := p.Send(dest, "text/plain", body, opts...); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// drainInline consumes dest with a plain go-stomp consumer (default
// options, client-individual acks, each ACK written inline after its
// message), sending prefetch as activemq.prefetchSize when > 0. It returns
// the messages received when n arrived or when none came within stall;
// a deadlocked go-stomp client never receives another one.
func drainInline(t testing.TB, addr, dest string, prefetch, n int, stall time.Duration) (got int, took time.Duration) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gostomp.Connect(nc, gostomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	var opts []func(*frame.Frame) error
	if prefetch > 0 {
		opts = append(opts, gostomp.SubscribeOpt.Header(HeaderPrefetchAMQ, strconv.Itoa(prefetch)))
	}
	s, err := c.Subscribe(dest, gostomp.AckClientIndividual, opts...)
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan struct{}, n)
	start := time.Now()
	go func() {
		for m := range s.C {
			if m.Err != nil || c.Ack(m) != nil {
				return
			}
			acked <- struct{}{}
		}
	}()
	timer := time.NewTimer(stall)
	defer timer.Stop()
	for got < n {
		select {
		case <-acked:
			got++
			timer.Reset(stall)
		case <-timer.C:
			// Deadlocked: go-stomp's Disconnect would block behind the
			// stuck ACK, so close the socket for the broker's sake and
			// leave the client's goroutines where they are.
			nc.Close()
			return got, time.Since(start)
		}
	}
	took = time.Since(start)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	return got, took
}

// TestGoStompInlineAckDefaultPrefetch: a go-stomp consumer acking inline
// drains a 5,000-message backlog under the broker's default prefetch
// (it stalled for good after about 400 with the old default of 1000).
func TestGoStompInlineAckDefaultPrefetch(t *testing.T) {
	b, addr := startBroker(t, nil, Options{})
	fillBacklog(t, addr, "/queue/backlog", backlogSize)
	got, _ := drainInline(t, addr, "/queue/backlog", 0, backlogSize, waitFor)
	if got != backlogSize {
		t.Fatalf("consumer stalled after %d of %d messages with the default prefetch %d", got, backlogSize, b.opts.Prefetch)
	}
	poll(t, "all acknowledged", func() bool { d, in := queueDepth(b, "/queue/backlog"); return d == 0 && in == 0 })
}

// TestGoStompInlineAckLargePrefetchStalls proves the test above can fail:
// the same consumer subscribing with the old default, 1000, stalls. The
// deadlock is a race (go-stomp's loop picks reads and writes at random),
// likely but not certain on one backlog, so up to 5 backlogs are tried.
func TestGoStompInlineAckLargePrefetchStalls(t *testing.T) {
	for try := range 5 {
		_, addr := startBroker(t, nil, Options{})
		dest := fmt.Sprintf("/queue/backlog%d", try)
		fillBacklog(t, addr, dest, backlogSize)
		got, _ := drainInline(t, addr, dest, 1000, backlogSize, 5*time.Second)
		if got < backlogSize {
			t.Logf("try %d: stalled after %d of %d at prefetch 1000", try+1, got, backlogSize)
			return
		}
	}
	t.Fatalf("5 backlogs of %d drained at prefetch 1000; go-stomp no longer deadlocks, revisit DefaultPrefetch", backlogSize)
}

// BenchmarkInlineAckBacklog drains a 5,000-message backlog with an
// inline-acking go-stomp consumer at several prefetches; a stalled one
// is skipped with the count it reached. Compare msg/s within one run.
func BenchmarkInlineAckBacklog(b *testing.B) {
	for _, pf := range []int{1000, 64, 38, 16, 1} {
		b.Run(fmt.Sprintf("prefetch=%d", pf), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				_, addr := startBroker(b, nil, Options{})
				fillBacklog(b, addr, "/queue/backlog", backlogSize)
				b.StartTimer()
				got, took := drainInline(b, addr, "/queue/backlog", pf, backlogSize, 3*time.Second)
				if got != backlogSize {
					fmt.Printf("%s: stalled after %d of %d\n", b.Name(), got, backlogSize)
					b.SkipNow()
				}
				total += took
			}
			b.ReportMetric(float64(b.N*backlogSize)/total.Seconds(), "msg/s")
		})
	}
}
