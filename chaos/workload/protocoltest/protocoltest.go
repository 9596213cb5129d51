// Package protocoltest is the conformance suite every workload.Protocol
// runs against its real broker: confirmed sends, consumption with explicit
// acks, redelivery of what a lost consumer never acknowledged, and no
// confirmation from a killed broker.
package protocoltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/chaos/workload"
)

// Target is one broker to run the suite on.
type Target struct {
	Protocol workload.Protocol
	Endpoint workload.Endpoint
	// Kill kills the broker at once (kill -9); Restart starts it again on
	// the same address and data. The broker-lost case is skipped when
	// they are nil.
	Kill, Restart func(t *testing.T)
	// Wait bounds every wait for a delivery, redeliveries included (a
	// broker may redeliver only after its ack timeout). Default 60s.
	Wait time.Duration
}

// Run runs the suite; each case uses a destination of its own.
func Run(t *testing.T, tg Target) {
	if tg.Wait <= 0 {
		tg.Wait = 60 * time.Second
	}
	t.Run("SendConsumeAck", func(t *testing.T) { sendConsumeAck(t, tg) })
	t.Run("RedeliveryAfterConsumerLost", func(t *testing.T) { redelivery(t, tg) })
	t.Run("UnknownOnKilledBroker", func(t *testing.T) {
		if tg.Kill == nil || tg.Restart == nil {
			t.Skip("the target cannot kill its broker")
		}
		killed(t, tg)
	})
}

func dial(t *testing.T, tg Target) workload.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tg.Wait)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		c, err := tg.Protocol.Dial(ctx, tg.Endpoint, workload.DialOptions{Timeout: 5 * time.Second,
			SendTimeout: 10 * time.Second, WriteTimeout: 5 * time.Second, Prefetch: 10})
		if err == nil {
			t.Cleanup(func() { c.Abort() })
			return c
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dial %s: %v", tg.Endpoint.Addr, last)
	return nil
}

// subscribe dials and subscribes to dest with one ack per message.
func subscribe(t *testing.T, tg Target, dest string) (workload.Conn, workload.Subscription) {
	t.Helper()
	c := dial(t, tg)
	sub, err := c.Subscribe(dest, workload.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	return c, sub
}

func msg(run string, seq uint64) workload.Outgoing {
	return workload.Outgoing{Producer: "p0", Seq: seq, ID: workload.MessageID(run, "p0", seq), Attempt: 1,
		TS: time.Now().UnixNano(), Body: []byte(fmt.Sprintf("body %d", seq)), Persistent: true}
}

// send sends n messages, each confirmed, retrying a send whose stream or
// queue is still being set up (a cluster electing its leaders).
func send(t *testing.T, tg Target, c workload.Conn, dest, run string, from, n uint64) {
	t.Helper()
	for seq := from; seq < from+n; seq++ {
		if err := sendUntil(tg, c, dest, msg(run, seq)); err != nil {
			t.Fatalf("send %d to %s: %v", seq, dest, err)
		}
	}
}

// sendUntil sends m until it is confirmed or tg.Wait has passed; it
// returns the last send's error then.
func sendUntil(tg Target, c workload.Conn, dest string, m workload.Outgoing) error {
	end := time.Now().Add(tg.Wait)
	for {
		err := c.Send(dest, []workload.Outgoing{m}, false)
		if err == nil || time.Now().After(end) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// receive reads n deliveries from sub, acking each when ack is set.
func receive(t *testing.T, tg Target, sub workload.Subscription, n int, ack bool) []*workload.Delivery {
	t.Helper()
	var got []*workload.Delivery
	timer := time.NewTimer(tg.Wait)
	defer timer.Stop()
	for len(got) < n {
		select {
		case d, ok := <-sub.C():
			if !ok || d.Err != nil {
				t.Fatalf("subscription ended after %d of %d deliveries: %v", len(got), n, d)
			}
			if ack {
				if err := sub.Ack(d); err != nil {
					t.Fatalf("ack %s: %v", d.ID, err)
				}
			}
			got = append(got, d)
		case <-timer.C:
			t.Fatalf("%d of %d deliveries within %s: %v", len(got), n, tg.Wait, ids(got))
		}
	}
	return got
}

// quiet checks that sub delivers nothing for d.
func quiet(t *testing.T, sub workload.Subscription, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		if ok && m.Err == nil {
			t.Fatalf("unexpected delivery %s (redelivered %v)", m.ID, m.Redelivered)
		}
	case <-time.After(d):
	}
}

func ids(ds []*workload.Delivery) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.ID]++
	}
	return m
}

func sendConsumeAck(t *testing.T, tg Target) {
	const dest, run, n = "/queue/conf-ack", "ack", 20
	p := dial(t, tg)
	send(t, tg, p, dest, run, 1, n)
	c, sub := subscribe(t, tg, dest)
	got := receive(t, tg, sub, n, true)
	seen := ids(got)
	for seq := uint64(1); seq <= n; seq++ {
		id := workload.MessageID(run, "p0", seq)
		if seen[id] != 1 {
			t.Errorf("message %s received %d times, want 1", id, seen[id])
		}
	}
	for _, d := range got {
		if d.Producer != "p0" || d.Seq == 0 || d.TS == 0 || d.Dest != dest || d.Redelivered {
			t.Errorf("delivery %+v: want producer p0, its seq, its lb-ts, dest %s, first delivery", *d, dest)
		}
	}
	// Acknowledged messages are gone: a new consumer gets nothing.
	c.Close(time.Second)
	_, sub2 := subscribe(t, tg, dest)
	quiet(t, sub2, 2*time.Second)
}

func redelivery(t *testing.T, tg Target) {
	const dest, run, n = "/queue/conf-redeliver", "rd", 5
	p := dial(t, tg)
	send(t, tg, p, dest, run, 1, n)
	c, sub := subscribe(t, tg, dest)
	first := receive(t, tg, sub, n, false)
	c.Abort() // the consumer is lost before it acknowledged anything
	_, sub2 := subscribe(t, tg, dest)
	again := receive(t, tg, sub2, n, true)
	a, b := ids(first), ids(again)
	for id := range a {
		if b[id] != 1 {
			t.Errorf("message %s redelivered %d times, want 1", id, b[id])
		}
	}
	for _, d := range again {
		if !d.Redelivered {
			t.Errorf("redelivery of %s not marked redelivered", d.ID)
		}
	}
}

func killed(t *testing.T, tg Target) {
	const dest, run = "/queue/conf-killed", "kill"
	p := dial(t, tg)
	send(t, tg, p, dest, run, 1, 1)
	tg.Kill(t)
	typ, why := workload.Outcome(p.Send(dest, []workload.Outgoing{msg(run, 2)}, false))
	if typ == history.OK {
		t.Fatalf("a send to a killed broker was confirmed")
	}
	t.Logf("send to the killed broker: %s (%s)", typ, why)
	tg.Restart(t)
	// The same id again after the restart is confirmed, and the consumer
	// reads message 1 (confirmed before the kill) and 2.
	p2 := dial(t, tg)
	m := msg(run, 2)
	m.Attempt = 2
	if err := sendUntil(tg, p2, dest, m); err != nil {
		t.Fatalf("retry after restart: %v", err)
	}
	_, sub := subscribe(t, tg, dest)
	got := ids(receive(t, tg, sub, 2, true))
	for seq := uint64(1); seq <= 2; seq++ {
		if id := workload.MessageID(run, "p0", seq); got[id] != 1 {
			t.Errorf("message %s received %d times, want 1", id, got[id])
		}
	}
}
