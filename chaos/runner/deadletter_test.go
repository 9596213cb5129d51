package runner

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/driver/local"
	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/chaos/workload"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestDeadLetteredIsNotLoss: refbroker --max-redeliveries 1 moves the
// messages a consumer twice took and died holding to /queue/DLQ.t; the
// final drain reads that dead-letter queue too, and the checker counts
// them as dead-lettered, not lost and not received. Without the
// dead-letter reads the same run reports all of them lost.
func TestDeadLetteredIsNotLoss(t *testing.T) {
	if refErr != nil {
		t.Skipf("refbroker does not build: %v", refErr)
	}
	const n, dest = 10, "/queue/t"
	topo := scenario.Topology{
		Sites: []scenario.Site{{Name: "a"}, {Name: "clients"}},
		Links: []scenario.Link{{A: "clients", B: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "memory",
			Args: []string{"--max-redeliveries", "1"}}}},
	}
	d, err := local.New(topo, local.Options{Dir: t.TempDir(), BrokerBin: refBin, ClientSite: "clients",
		ReadyTimeout: 10 * time.Second, StopTimeout: 2 * time.Second, Log: t.Logf})
	if d != nil {
		t.Cleanup(func() { _ = d.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h, err := history.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fo := workload.Failover{Endpoints: []workload.Endpoint{{Name: "a1", Addr: addr}}}
	p, err := workload.NewProducer(workload.ProducerConfig{ID: "p0", Run: "r", Dest: dest, Size: 16, MaxMessages: n, Failover: fo}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Acked != n {
		t.Fatalf("producer: %+v", s)
	}

	// A consumer takes every message and dies without acking, twice: the
	// second hand-back is past the limit.
	for i := 0; i < 2; i++ {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := stomp.Connect(nc)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := c.Subscribe(dest, stomp.AckClientIndividual)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < n; j++ {
			select {
			case m := <-sub.C:
				if m.Err != nil {
					t.Fatal(m.Err)
				}
			case <-ctx.Done():
				t.Fatalf("round %d: %d of %d delivered", i, j, n)
			}
		}
		nc.Close()
	}
	dlq, _ := workload.DeadLetterQueue(dest)
	for {
		if k, ok := d.QueueDepth(ctx, "a1", dlq); ok && k == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never held the %d messages", dlq, n)
		case <-time.After(20 * time.Millisecond):
		}
	}

	st := workload.FinalDrain{Dests: []string{dest}, Endpoints: fo.Endpoints, Failover: fo, Quiet: 200 * time.Millisecond,
		Depth: d.QueueDepth, DeadLetter: workload.DeadLetterQueue}.Run(ctx, h)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Received != 0 || st.DeadLettered != n || len(st.Left) > 0 {
		t.Fatalf("drain: %+v, want %d dead-lettered", st, n)
	}
	ev, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := checker.Check(ev, checker.Options{})
	if r.Acknowledged != n || r.DeadLettered != n || r.Lost != 0 || r.Received != 0 {
		t.Fatalf("acknowledged %d dead-lettered %d lost %d received %d, want %d %d 0 0", r.Acknowledged, r.DeadLettered, r.Lost, r.Received, n, n)
	}
	if v, ok := r.Metric("dead_lettered"); !ok || v != n {
		t.Errorf("metric dead_lettered: %v %v", v, ok)
	}

	// The same history without the dead-letter reads: all lost.
	var without []history.Event
	for _, e := range ev {
		if e.Process != history.DeadLetterProcess {
			without = append(without, e)
		}
	}
	if r := checker.Check(without, checker.Options{}); r.Lost != n || r.DeadLettered != 0 {
		t.Errorf("without the dead-letter queue: lost %d dead-lettered %d, want %d 0", r.Lost, r.DeadLettered, n)
	}
}
