package checker_test

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func id(p string, seq uint64) string { return fmt.Sprintf("run-%s-%06d", p, seq) }

// Builders of hand-written history events.
func inv(ms int, p string, seq uint64, attempt int) history.Event {
	return history.Event{Time: at(ms), Type: history.Invoke, Process: p, Producer: p, Seq: seq, ID: id(p, seq), Attempt: attempt, Dest: "/queue/q", Node: "a1"}
}

func done(typ string, ms, invMS int, p string, seq uint64, attempt int) history.Event {
	return history.Event{Time: at(ms), Type: typ, Process: p, Producer: p, Seq: seq, ID: id(p, seq), Attempt: attempt,
		Dest: "/queue/q", LatencyNS: int64(time.Duration(ms-invMS) * time.Millisecond)}
}

// send is a whole acknowledged send: invoke at ms, ok 5ms later.
func send(ms int, p string, seq uint64) []history.Event {
	return []history.Event{inv(ms, p, seq, 1), done(history.OK, ms+5, ms, p, seq, 1)}
}

func recv(ms int, c, p string, seq uint64) history.Event {
	return history.Event{Time: at(ms), Type: history.Recv, Process: c, Producer: p, Seq: seq, ID: id(p, seq), Dest: "/queue/q"}
}

func redelivered(e history.Event) history.Event { e.Redelivered = true; return e }

func fault(typ string, ms int, name string) history.Event {
	return history.Event{Time: at(ms), Type: typ, Fault: name}
}

func join(parts ...any) []history.Event {
	var out []history.Event
	for _, p := range parts {
		switch v := p.(type) {
		case history.Event:
			out = append(out, v)
		case []history.Event:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("join: %T", p))
		}
	}
	return out
}

// counts is the part of a Result most cases assert exactly.
type counts struct {
	Attempted, Acknowledged, Received, Lost, Duplicated, DuplicatedIDs,
	Unexpected, Recovered, RecoveredFailed, Unconfirmed, OrderViolations int
}

func countsOf(r *checker.Result) counts {
	return counts{r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Duplicated, r.DuplicatedIDs,
		r.Unexpected, r.Recovered, r.RecoveredFailed, r.Unconfirmed, r.OrderViolations}
}

func TestCounts(t *testing.T) {
	cases := []struct {
		name   string
		events []history.Event
		want   counts
		check  func(t *testing.T, r *checker.Result)
	}{
		{
			name:   "clean run",
			events: join(send(0, "p0", 1), send(10, "p0", 2), send(20, "p1", 1), recv(30, "c0", "p0", 1), recv(31, "c0", "p0", 2), recv(32, "c1", "p1", 1)),
			want:   counts{Attempted: 3, Acknowledged: 3, Received: 3},
		},
		{
			name:   "loss of an acknowledged message",
			events: join(send(0, "p0", 1), send(10, "p0", 2), send(20, "p1", 1), recv(30, "c0", "p0", 1), recv(32, "c0", "p1", 1)),
			want:   counts{Attempted: 3, Acknowledged: 3, Received: 2, Lost: 1},
			check: func(t *testing.T, r *checker.Result) {
				if !reflect.DeepEqual(r.LostByProducer, map[string]int{"p0": 1}) {
					t.Errorf("lost by producer %v", r.LostByProducer)
				}
				if len(r.LostSample) != 1 || r.LostSample[0].ID != id("p0", 2) || r.LostSample[0].Seq != 2 || r.LostSample[0].SentS != 0.010 {
					t.Errorf("lost sample %+v", r.LostSample)
				}
			},
		},
		{
			name: "unknown outcome that later shows up is recovered, not lost",
			events: join(inv(0, "p0", 1, 1), done(history.Unknown, 100, 0, "p0", 1, 1),
				recv(500, "c0", "p0", 1)),
			want: counts{Attempted: 1, Received: 1, Recovered: 1},
		},
		{
			name: "unknown outcome retried with the same id and acknowledged, delivered twice",
			events: join(inv(0, "p0", 1, 1), done(history.Unknown, 100, 0, "p0", 1, 1),
				inv(200, "p0", 1, 2), done(history.OK, 210, 200, "p0", 1, 2),
				recv(300, "c0", "p0", 1), redelivered(recv(400, "c0", "p0", 1))),
			want: counts{Attempted: 1, Acknowledged: 1, Received: 1, Duplicated: 1, DuplicatedIDs: 1},
			check: func(t *testing.T, r *checker.Result) {
				if r.UnknownOutcomes != 1 || r.Failed != 0 {
					t.Errorf("unknown %d failed %d", r.UnknownOutcomes, r.Failed)
				}
				if r.Latency.N != 1 || r.Latency.Max != 10 {
					t.Errorf("latency of the acknowledged attempt: %+v", r.Latency)
				}
			},
		},
		{
			name: "a failed send that is delivered anyway",
			events: join(inv(0, "p0", 1, 1), done(history.Fail, 10, 0, "p0", 1, 1),
				recv(50, "c0", "p0", 1)),
			want: counts{Attempted: 1, Received: 1, Recovered: 1, RecoveredFailed: 1},
		},
		{
			name: "unknown outcome never delivered is unconfirmed, not lost",
			events: join(inv(0, "p0", 1, 1), done(history.Unknown, 10, 0, "p0", 1, 1),
				inv(20, "p0", 2, 1)), // never completed at all
			want: counts{Attempted: 2, Unconfirmed: 2},
		},
		{
			name:   "received but never invoked is unexpected",
			events: join(send(0, "p0", 1), recv(10, "c0", "p0", 1), recv(11, "c0", "p9", 7)),
			want:   counts{Attempted: 1, Acknowledged: 1, Received: 2, Unexpected: 1},
		},
		{
			name: "duplicates: deliveries beyond the first, and ids delivered more than once",
			events: join(send(0, "p0", 1), send(10, "p0", 2),
				recv(20, "c0", "p0", 1), recv(21, "c1", "p0", 1), recv(22, "c0", "p0", 1),
				recv(23, "c0", "p0", 2), recv(24, "c1", "p0", 2)),
			want: counts{Attempted: 2, Acknowledged: 2, Received: 2, Duplicated: 3, DuplicatedIDs: 2},
		},
		{
			name:   "order violation: seq 1 acknowledged before seq 2 was sent, delivered after it",
			events: join(send(0, "p0", 1), send(10, "p0", 2), send(20, "p0", 3), recv(30, "c0", "p0", 3), recv(31, "c0", "p0", 1), recv(32, "c0", "p0", 2)),
			want:   counts{Attempted: 3, Acknowledged: 3, Received: 3, OrderViolations: 2},
			check: func(t *testing.T, r *checker.Result) {
				if r.MaxReorder != 2 || r.OrderViolationsByProducer["p0"] != 2 {
					t.Errorf("max reorder %d, by producer %v", r.MaxReorder, r.OrderViolationsByProducer)
				}
			},
		},
		{
			name:   "a redelivery out of order is not a violation",
			events: join(send(0, "p0", 1), send(10, "p0", 2), recv(30, "c0", "p0", 2), redelivered(recv(31, "c0", "p0", 1))),
			want:   counts{Attempted: 2, Acknowledged: 2, Received: 2},
		},
		{
			name: "a repeat of an already delivered message is a duplicate, not a violation",
			events: join(send(0, "p0", 1), send(10, "p0", 2), recv(20, "c0", "p0", 1), recv(30, "c0", "p0", 2),
				recv(40, "c0", "p0", 1)),
			want: counts{Attempted: 2, Acknowledged: 2, Received: 2, Duplicated: 1, DuplicatedIDs: 1},
		},
		{
			name: "a retried send acknowledged after the next was invoked may come later",
			events: join(inv(0, "p0", 1, 1), done(history.Unknown, 5, 0, "p0", 1, 1),
				send(10, "p0", 2), // a pipelining producer moved on
				inv(20, "p0", 1, 2), done(history.OK, 25, 20, "p0", 1, 2),
				recv(30, "c0", "p0", 2), recv(31, "c0", "p0", 1)),
			want: counts{Attempted: 2, Acknowledged: 2, Received: 2},
		},
		{
			name:   "different consumers see independent orders",
			events: join(send(0, "p0", 1), send(10, "p0", 2), recv(30, "c1", "p0", 2), recv(31, "c0", "p0", 1)),
			want:   counts{Attempted: 2, Acknowledged: 2, Received: 2},
		},
		{
			name:   "empty history",
			events: nil,
			want:   counts{},
			check: func(t *testing.T, r *checker.Result) {
				if r.Throughput != 0 || len(r.Timeline) != 0 || r.UnavailableS != 0 {
					t.Errorf("empty: %+v", r)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := checker.Check(c.events, checker.Options{})
			if got := countsOf(r); got != c.want {
				t.Errorf("counts\n got %+v\nwant %+v", got, c.want)
			}
			if c.check != nil {
				c.check(t, r)
			}
			// Shuffled input gives the same result: Check sorts by time.
			rev := append([]history.Event(nil), c.events...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if got := countsOf(checker.Check(rev, checker.Options{})); got != c.want {
				t.Errorf("reversed input: counts %+v", got)
			}
		})
	}
}

func TestLostByPhase(t *testing.T) {
	ev := join(
		send(500, "p0", 1), send(1500, "p0", 2), send(2500, "p0", 3), send(3500, "p1", 1),
		// Offsets count from the first event, at 500ms.
		fault(history.FaultStart, 1000, "kill a1"), fault(history.FaultEnd, 2000, "kill a1"),
		fault(history.FaultStart, 3000, "pause a1"), // never ends: lasts to the end
		recv(4000, "c0", "p1", 9),                   // unexpected, extends the history
	)
	r := checker.Check(ev, checker.Options{})
	if r.Lost != 4 {
		t.Fatalf("lost %d, want 4", r.Lost)
	}
	want := map[string]int{checker.PhaseBefore: 1, checker.PhaseDuring: 2, checker.PhaseAfter: 1}
	if !reflect.DeepEqual(r.LostByPhase, want) {
		t.Errorf("by phase %v, want %v", r.LostByPhase, want)
	}
	if len(r.Faults) != 2 {
		t.Fatalf("faults %+v", r.Faults)
	}
	k, p := r.Faults[0], r.Faults[1]
	if k.Name != "kill a1" || k.StartS != 0.5 || k.EndS != 1.5 || k.Open || k.LostDuring != 1 {
		t.Errorf("kill window %+v", k)
	}
	if p.Name != "pause a1" || !p.Open || p.EndS != 3.5 || p.LostDuring != 1 {
		t.Errorf("open pause window %+v", p)
	}
	phases := []string{}
	for _, l := range r.LostSample {
		phases = append(phases, l.Phase)
	}
	if !reflect.DeepEqual(phases, []string{"before", "during", "after", "during"}) {
		t.Errorf("sample phases %v", phases)
	}
	if got := r.Timeline[1].Lost + r.Timeline[2].Lost; got != 2 {
		t.Errorf("timeline lost in seconds 1-2: %d", got)
	}
}

func TestUnavailabilityAndRecovery(t *testing.T) {
	var ev []history.Event
	seq := uint64(0)
	// Sends every 100ms from 0 to 1000ms, none until 3500ms, then every
	// 100ms to 5000ms; then a producer keeps trying until 7000ms.
	for ms := 0; ms <= 5000; ms += 100 {
		if ms > 1000 && ms < 3500 {
			continue
		}
		seq++
		ev = append(ev, send(ms, "p0", seq)...)
		ev = append(ev, recv(ms+50, "c0", "p0", seq))
	}
	ev = append(ev, inv(1090, "p1", 1, 1), done(history.OK, 1210, 1090, "p1", 1, 1)) // in flight when the kill hit
	ev = append(ev, inv(6000, "p1", 2, 1), done(history.Unknown, 7000, 6000, "p1", 2, 1))
	ev = append(ev, fault(history.FaultStart, 1200, "kill a1"), fault(history.FaultEnd, 3000, "kill a1"))
	ev = append(ev, fault(history.FaultStart, 5500, "pause a1"), fault(history.FaultEnd, 5600, "pause a1"))

	r := checker.Check(ev, checker.Options{UnavailableAfter: time.Second})
	// Gaps without an ok: 1.210s -> 3.505s (2.295s) and 5.005s -> 7s (1.995s).
	if len(r.Unavailable) != 2 {
		t.Fatalf("unavailable windows %+v", r.Unavailable)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if w := r.Unavailable[0]; !near(w.StartS, 1.210) || !near(w.EndS, 3.505) {
		t.Errorf("first window %+v", w)
	}
	if w := r.Unavailable[1]; !near(w.StartS, 5.005) || !near(w.EndS, 7) {
		t.Errorf("second window %+v", w)
	}
	if !near(r.UnavailableS, 2.295+1.995) {
		t.Errorf("unavailable_s %v", r.UnavailableS)
	}
	// The ok at 1.210s was invoked before the kill: it does not count; the
	// first send invoked after it is acknowledged at 3.505s.
	if f := r.Faults[0]; f.RecoverS == nil || !near(*f.RecoverS, 3.505-1.2) {
		t.Errorf("kill recover %v", f.RecoverS)
	}
	if f := r.Faults[1]; f.RecoverS != nil {
		t.Errorf("pause at 5.5s recovered at %v, but no send succeeded after it", *f.RecoverS)
	}
	if r.SendStartS != 0 || r.SendEndS != 7 {
		t.Errorf("send phase %v..%v", r.SendStartS, r.SendEndS)
	}
	// A threshold longer than every gap finds nothing.
	if r2 := checker.Check(ev, checker.Options{UnavailableAfter: 3 * time.Second}); r2.UnavailableS != 0 {
		t.Errorf("threshold 3s: %v", r2.Unavailable)
	}
}

func TestLatencyThroughputTimeline(t *testing.T) {
	var ev []history.Event
	// 100 sends, one every 10ms, latencies 1..100ms, each received 1s after
	// its invoke.
	for i := 1; i <= 100; i++ {
		ms := (i - 1) * 10
		ev = append(ev, inv(ms, "p0", uint64(i), 1), done(history.OK, ms+i, ms, "p0", uint64(i), 1))
		e := recv(ms+1000, "c0", "p0", uint64(i))
		e.LatencyNS = int64(time.Second)
		ev = append(ev, e)
	}
	r := checker.Check(ev, checker.Options{})
	l := r.Latency
	if l.N != 100 || l.Max != 100 || l.P50 != 50.5 || math.Abs(l.P99-99.01) > 1e-9 || math.Abs(l.Mean-50.5) > 1e-9 {
		t.Errorf("latency %+v", l)
	}
	if !(l.P99 < l.P999 && l.P999 <= l.P9999 && l.P9999 <= l.Max) {
		t.Errorf("percentiles out of order: p99 %v p99.9 %v p99.99 %v max %v", l.P99, l.P999, l.P9999, l.Max)
	}
	if r.EndToEnd.N != 100 || r.EndToEnd.P50 != 1000 || r.EndToEnd.Max != 1000 {
		t.Errorf("e2e %+v", r.EndToEnd)
	}
	// Send phase 0 .. 1090ms (the last ok: 990+100).
	if math.Abs(r.Throughput-100/1.090) > 1e-9 {
		t.Errorf("throughput %v", r.Throughput)
	}
	// History runs to 1990ms: two buckets.
	if len(r.Timeline) != 2 {
		t.Fatalf("timeline %+v", r.Timeline)
	}
	if b := r.Timeline[0]; b.Invoked != 100 || b.Acked+r.Timeline[1].Acked != 100 || b.Received != 0 {
		t.Errorf("bucket 0 %+v", b)
	}
	if b := r.Timeline[1]; b.Received != 100 || b.MaxMs != 100 {
		t.Errorf("bucket 1 %+v", b)
	}
}

func TestLostSampleCap(t *testing.T) {
	var ev []history.Event
	for i := 1; i <= 50; i++ {
		ev = append(ev, send(i, "p0", uint64(i))...)
	}
	if r := checker.Check(ev, checker.Options{LostSample: 10}); r.Lost != 50 || len(r.LostSample) != 10 || r.LostSample[0].Seq != 1 {
		t.Errorf("lost %d, sample %d", r.Lost, len(r.LostSample))
	}
	if r := checker.Check(ev, checker.Options{LostSample: -1}); len(r.LostSample) != 0 {
		t.Errorf("negative cap kept %d", len(r.LostSample))
	}
}

func TestSummarize(t *testing.T) {
	s := checker.Summarize([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if s.N != 8 || s.Mean != 5 || s.Min != 2 || s.Max != 9 || s.Median != 4.5 || math.Abs(s.Stddev-2.138089935299395) > 1e-12 {
		t.Errorf("summary %+v", s)
	}
	if one := checker.Summarize([]float64{3}); one.Stddev != 0 || one.Mean != 3 || one.P90 != 3 {
		t.Errorf("one value %+v", one)
	}
	if (checker.Summarize(nil) != checker.Summary{}) {
		t.Error("empty summary not zero")
	}
}

func TestMetricCoversScenarioMetrics(t *testing.T) {
	r := checker.Check(join(send(0, "p0", 1), send(100, "p0", 2), recv(200, "c0", "p0", 1),
		fault(history.FaultStart, 50, "kill a1")), checker.Options{})
	for _, name := range scenario.Metrics {
		if _, ok := r.Metric(name); !ok {
			t.Errorf("scenario metric %q has no value in the checker", name)
		}
	}
	if _, ok := r.Metric("nonsense"); ok {
		t.Error("unknown metric accepted")
	}
	want := map[string]float64{"attempted": 2, "acknowledged": 2, "received": 1, "lost": 1, "recover_s": 0.055}
	for name, v := range want {
		if got, _ := r.Metric(name); math.Abs(got-v) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	// A fault nothing recovered from counts to the end of the history.
	r = checker.Check(join(send(0, "p0", 1), fault(history.FaultStart, 1000, "kill a1"), recv(3000, "c0", "p0", 1)), checker.Options{})
	if got, _ := r.Metric("recover_s"); got != 2 {
		t.Errorf("unrecovered recover_s = %v, want 2", got)
	}
}

// TestRecoveryCountsTheOutageAFaultCaused: a database killed under the
// broker does not stop it at once (open connections commit for a moment),
// so a send invoked just after the fault's start still succeeds; the
// outage comes after. Time to recover runs to the ok that ended that
// outage, not to the first ok after the start. A fault the service rode
// through without a gap keeps the time to its first ok.
func TestRecoveryCountsTheOutageAFaultCaused(t *testing.T) {
	var ev []history.Event
	seq := uint64(0)
	for ms := 0; ms <= 6000; ms += 100 {
		if ms > 1300 && ms < 4000 { // the outage: last ok at 1.305s, next at 4.005s
			continue
		}
		seq++
		ev = append(ev, send(ms, "p0", seq)...)
	}
	ev = append(ev, fault(history.FaultStart, 1250, "db-lost db1"), fault(history.FaultEnd, 3000, "db-lost db1"))
	ev = append(ev, fault(history.FaultStart, 5000, "latency a1"), fault(history.FaultEnd, 5500, "latency a1"))
	r := checker.Check(ev, checker.Options{UnavailableAfter: time.Second})
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if f := r.Faults[0]; f.RecoverS == nil || !near(*f.RecoverS, 4.005-1.25) {
		t.Errorf("db-lost recover %v, want %v (to the end of the outage, not the ok at 1.305s)", deref(f.RecoverS), 4.005-1.25)
	}
	if f := r.Faults[1]; f.RecoverS == nil || !near(*f.RecoverS, 5.005-5.0) {
		t.Errorf("latency recover %v, want %v (no outage: the first ok of a send after it)", deref(f.RecoverS), 5.005-5.0)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestSendPhaseMarks: the broker dies at 1s and the producers, unable to
// connect, invoke nothing more; the runner's send-start and send-end
// marks (0s and 5s) keep the phase to what was planned, so the silence is
// 4s of unavailability. Without the marks the phase would end at the
// last send and the outage would not show.
func TestSendPhaseMarks(t *testing.T) {
	var ev []history.Event
	seq := uint64(0)
	for ms := 0; ms <= 1000; ms += 100 {
		seq++
		ev = append(ev, send(ms, "p0", seq)...)
	}
	r := checker.Check(ev, checker.Options{UnavailableAfter: time.Second})
	if r.UnavailableS != 0 || r.SendEndS > 1.01 {
		t.Fatalf("without marks: unavailable %v, phase end %v", r.UnavailableS, r.SendEndS)
	}
	marked := append([]history.Event{{Time: at(0), Type: history.SendStart}}, ev...)
	marked = append(marked, history.Event{Time: at(5000), Type: history.SendEnd})
	r = checker.Check(marked, checker.Options{UnavailableAfter: time.Second})
	if math.Abs(r.UnavailableS-(5-1.005)) > 1e-9 || r.SendEndS != 5 {
		t.Fatalf("with marks: unavailable %v (want %v), phase %v..%v", r.UnavailableS, 5-1.005, r.SendStartS, r.SendEndS)
	}
	if len(r.Unavailable) != 1 {
		t.Fatalf("windows %+v", r.Unavailable)
	}
}

// TestDeadLettered: an acknowledged id read only from its dead-letter
// queue is dead-lettered, not lost and not received; one also delivered
// from its destination is received, not dead-lettered.
func TestDeadLettered(t *testing.T) {
	dl := func(ms int, p string, seq uint64) history.Event {
		e := recv(ms, history.DeadLetterProcess, p, seq)
		e.Dest = "/queue/DLQ.q"
		return e
	}
	r := checker.Check(join(send(0, "p0", 1), send(10, "p0", 2), send(20, "p0", 3),
		recv(30, "c0", "p0", 2), dl(40, "p0", 1), dl(41, "p0", 2)), checker.Options{})
	if r.DeadLettered != 1 || r.Lost != 1 || r.Received != 1 || r.Duplicated != 0 || r.Drained != 0 {
		t.Fatalf("dead-lettered %d lost %d received %d duplicated %d drained %d, want 1 1 1 0 0",
			r.DeadLettered, r.Lost, r.Received, r.Duplicated, r.Drained)
	}
}
