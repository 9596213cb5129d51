package checker

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/lossbench/lossbench/chaos/history"
)

// Options tune Check. The zero value uses the defaults.
type Options struct {
	// UnavailableAfter is the shortest interval without an ok that counts
	// as unavailability. Default 1s.
	UnavailableAfter time.Duration
	// LostSample caps Result.LostSample. Default 1000; negative means none.
	LostSample int
	// ActiveGap is how long a node may go without acknowledging and still
	// be in the same period of activity, for DualActive. Default 1s.
	ActiveGap time.Duration
}

// Default option values.
const (
	DefaultUnavailableAfter = time.Second
	DefaultLostSample       = 1000
)

// Phases of a lost message relative to fault windows (see the package doc).
const (
	PhaseBefore = "before"
	PhaseDuring = "during"
	PhaseAfter  = "after"
)

// Result is what Check found. Its JSON form is embedded in result.json.
type Result struct {
	// Start is the time of the history's first event; every offset in the
	// result (seconds, "_s") counts from it.
	Start time.Time `json:"start"`
	// SendStartS and SendEndS bound the send phase.
	SendStartS float64 `json:"send_start_s"`
	SendEndS   float64 `json:"send_end_s"`
	// EndS is the offset of the history's last event.
	EndS float64 `json:"end_s"`
	// Events is the number of history events read.
	Events int `json:"events"`

	Attempted       int `json:"attempted"`
	Acknowledged    int `json:"acknowledged"`
	Received        int `json:"received"`
	Lost            int `json:"lost"`
	Duplicated      int `json:"duplicated"`
	DuplicatedIDs   int `json:"duplicated_ids"`
	Unexpected      int `json:"unexpected"`
	Recovered       int `json:"recovered"`
	RecoveredFailed int `json:"recovered_failed"`
	Unconfirmed     int `json:"unconfirmed"`
	// Drained counts ids first received by the final drain
	// (history.DrainProcess): messages the consumers left in the broker.
	Drained int `json:"drained"`
	// DeadLettered counts ids read only from a dead-letter queue
	// (history.DeadLetterProcess): the broker kept them but gave up
	// delivering them after too many redeliveries. Not lost, not received.
	DeadLettered int `json:"dead_lettered"`
	// Failed and UnknownOutcomes count outcome events (not ids).
	Failed          int `json:"failed_sends"`
	UnknownOutcomes int `json:"unknown_sends"`

	LostByProducer map[string]int `json:"lost_by_producer"`
	LostByPhase    map[string]int `json:"lost_by_phase"`
	// LossAttribution places the lost messages by the fault window in
	// force at their acknowledgement, their node, and their part of the
	// history (prefix, middle, postfix), with the observed RPO.
	LossAttribution Attribution `json:"loss_attribution"`
	// LostSample is up to Options.LostSample lost messages, by send time.
	LostSample []LostMessage `json:"lost_sample,omitempty"`

	OrderViolations           int            `json:"order_violations"`
	OrderViolationsByProducer map[string]int `json:"order_violations_by_producer,omitempty"`
	// MaxReorder is the largest m-n over the order violations.
	MaxReorder uint64 `json:"max_reorder,omitempty"`

	// Throughput is acknowledged-and-received ids per second of the send
	// phase.
	Throughput float64     `json:"throughput"`
	Latency    Percentiles `json:"latency_ms"`
	EndToEnd   Percentiles `json:"e2e_ms"`
	// Timeline has one bucket per second from Start.
	Timeline []Bucket `json:"timeline"`

	UnavailableS float64  `json:"unavailable_s"`
	Unavailable  []Window `json:"unavailable,omitempty"`

	// DualActiveS sums the windows in which two different nodes
	// acknowledged sends (two masters); DualActive lists them with the
	// nodes.
	DualActiveS float64      `json:"dual_active_s"`
	DualActive  []DualWindow `json:"dual_active,omitempty"`

	Faults []FaultWindow `json:"faults,omitempty"`
}

// LostMessage is one acknowledged message nobody received.
type LostMessage struct {
	ID       string `json:"id"`
	Producer string `json:"producer"`
	Seq      uint64 `json:"seq"`
	// SentS is the send time (see the package doc), seconds from Start.
	SentS float64 `json:"sent_s"`
	Phase string  `json:"phase"`
	Node  string  `json:"node,omitempty"`
	// AckedS is the time of its first ok; Window the fault window in force
	// then (see Attribution), AckNode the node whose RECEIPT it was, Part
	// its part of the history.
	AckedS  float64 `json:"acked_s"`
	Window  string  `json:"window"`
	AckNode string  `json:"ack_node,omitempty"`
	Part    string  `json:"part"`
}

// Window is an interval, seconds from Start.
type Window struct {
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// Seconds is the window's length.
func (w Window) Seconds() float64 { return w.EndS - w.StartS }

// FaultWindow is one fault as the history recorded it.
type FaultWindow struct {
	Name string `json:"name"`
	Window
	StartTime time.Time `json:"start_time"`
	EndTime   time.Time `json:"end_time"`
	// Open is set when the history has no fault-end for it: it lasted to
	// the end of the history.
	Open bool `json:"open,omitempty"`
	// RecoverS is the time to recover, nil if no send succeeded after it.
	RecoverS *float64 `json:"recover_s"`
	// LostDuring counts lost messages sent inside this window.
	LostDuring int `json:"lost_during"`
}

// Bucket is one second of the timeline; counts are events in it, except
// Lost, which counts lost messages by send time.
type Bucket struct {
	T        int     `json:"t"`
	Invoked  int     `json:"invoked"`
	Acked    int     `json:"acked"`
	Failed   int     `json:"failed"`
	Unknown  int     `json:"unknown"`
	Received int     `json:"received"`
	Lost     int     `json:"lost"`
	P50Ms    float64 `json:"latency_p50_ms"`
	MaxMs    float64 `json:"latency_max_ms"`
}

// msg is what the checker knows of one id.
type msg struct {
	id          string
	producer    string
	seq         uint64
	invoked     bool
	firstInvoke time.Time
	node        string
	ackNode     string // node of the first ok
	acked       bool
	okAt        time.Time // first ok
	sentAt      time.Time // invoke of the first ok attempt
	fails       int
	unknowns    int
	deliveries  int
	// deadLettered: read from a dead-letter queue by the final drain.
	deadLettered bool
}

// Check computes the result of a history. Events need not be sorted.
func Check(events []history.Event, opt Options) *Result {
	if opt.UnavailableAfter <= 0 {
		opt.UnavailableAfter = DefaultUnavailableAfter
	}
	if opt.LostSample == 0 {
		opt.LostSample = DefaultLostSample
	}
	if opt.ActiveGap <= 0 {
		opt.ActiveGap = DefaultActiveGap
	}
	ev := make([]history.Event, len(events))
	copy(ev, events)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Time.Before(ev[j].Time) })

	r := &Result{
		Events:          len(ev),
		LostByProducer:  map[string]int{},
		LostByPhase:     map[string]int{PhaseBefore: 0, PhaseDuring: 0, PhaseAfter: 0},
		Timeline:        []Bucket{},
		LossAttribution: Attribution{Groups: []LossGroup{}},
	}
	if len(ev) == 0 {
		return r
	}
	r.Start = ev[0].Time
	end := ev[len(ev)-1].Time
	r.EndS = end.Sub(r.Start).Seconds()
	sec := func(t time.Time) float64 { return t.Sub(r.Start).Seconds() }

	msgs := map[string]*msg{}
	get := func(id string) *msg {
		m := msgs[id]
		if m == nil {
			m = &msg{id: id}
			msgs[id] = m
		}
		return m
	}
	type attemptKey struct {
		id      string
		attempt int
	}
	invokes := map[attemptKey]time.Time{}
	var (
		okTimes            []time.Time // completion of every ok, sorted
		okInvokes          []time.Time // the invoke of each ok, same order
		latencies, e2e     []float64
		acks               []ackSpan // every acknowledged attempt, by node
		sendStart, sendEnd time.Time
		nb                 = int(end.Sub(r.Start)/time.Second) + 1
	)
	r.Timeline = make([]Bucket, nb)
	bucketLat := make([][]float64, nb)
	for i := range r.Timeline {
		r.Timeline[i].T = i
	}
	bucket := func(t time.Time) *Bucket { return &r.Timeline[int(t.Sub(r.Start)/time.Second)] }
	extend := func(t time.Time) {
		if sendStart.IsZero() || t.Before(sendStart) {
			sendStart = t
		}
		if t.After(sendEnd) {
			sendEnd = t
		}
	}
	order := newOrderChecker()
	var faults faultMatcher
	var markStart, markEnd time.Time // the runner's send-phase marks

	for _, e := range ev {
		switch e.Type {
		case history.SendStart:
			markStart = e.Time
		case history.SendEnd:
			markEnd = e.Time
		case history.Invoke:
			m := get(e.ID)
			if !m.invoked {
				m.invoked, m.firstInvoke, m.producer, m.seq, m.node = true, e.Time, e.Producer, e.Seq, e.Node
			}
			invokes[attemptKey{e.ID, e.Attempt}] = e.Time
			bucket(e.Time).Invoked++
			extend(e.Time)
		case history.OK, history.Fail, history.Unknown:
			m := get(e.ID)
			if m.producer == "" {
				m.producer, m.seq = e.Producer, e.Seq
			}
			inv, ok := invokes[attemptKey{e.ID, e.Attempt}]
			if !ok {
				inv = e.Time.Add(-time.Duration(e.LatencyNS))
			}
			b := bucket(e.Time)
			switch e.Type {
			case history.OK:
				if !m.acked {
					m.acked, m.okAt, m.sentAt, m.ackNode = true, e.Time, inv, e.Node
					if m.ackNode == "" {
						m.ackNode = m.node
					}
				}
				lat := float64(e.LatencyNS) / 1e6
				if e.LatencyNS <= 0 {
					lat = float64(e.Time.Sub(inv)) / 1e6
				}
				latencies = append(latencies, lat)
				bucketLat[int(e.Time.Sub(r.Start)/time.Second)] = append(bucketLat[int(e.Time.Sub(r.Start)/time.Second)], lat)
				okTimes = append(okTimes, e.Time)
				okInvokes = append(okInvokes, inv)
				acks = append(acks, ackSpan{node: e.Node, start: inv, end: e.Time})
				b.Acked++
			case history.Fail:
				m.fails++
				r.Failed++
				b.Failed++
			default:
				m.unknowns++
				r.UnknownOutcomes++
				b.Unknown++
			}
			extend(e.Time)
		case history.Recv:
			m := get(e.ID)
			if e.Process == history.DeadLetterProcess {
				// Kept by the broker, never delivered from its
				// destination: counted apart, not as a delivery.
				m.deadLettered = true
				if m.producer == "" {
					m.producer, m.seq = e.Producer, e.Seq
				}
				continue
			}
			if m.producer == "" {
				m.producer, m.seq = e.Producer, e.Seq
			}
			if m.deliveries == 0 {
				l := float64(e.LatencyNS) / 1e6
				if e.LatencyNS <= 0 && m.invoked {
					l = float64(e.Time.Sub(m.firstInvoke)) / 1e6
				}
				if e.LatencyNS > 0 || m.invoked {
					e2e = append(e2e, l)
				}
				bucket(e.Time).Received++
				if e.Process == history.DrainProcess {
					r.Drained++
				}
			}
			order.recv(r, e, m)
			m.deliveries++
		case history.FaultStart:
			faults.start(e)
		case history.FaultEnd:
			faults.end(e)
		}
	}
	// The runner's marks widen the phase to what was planned: producers
	// that could not connect invoked nothing, and their silence is
	// unavailability, not the end of the phase.
	if !markStart.IsZero() && (sendStart.IsZero() || markStart.Before(sendStart)) {
		sendStart = markStart
	}
	if !markEnd.IsZero() && markEnd.After(sendEnd) && !sendStart.IsZero() {
		sendEnd = markEnd
	}
	if !sendStart.IsZero() {
		r.SendStartS, r.SendEndS = sec(sendStart), sec(sendEnd)
	}
	r.Faults = faults.windows(r.Start, end)

	// Per-id accounting.
	var lost, acked []*msg
	for _, m := range msgs {
		if m.invoked {
			r.Attempted++
		}
		if m.acked {
			r.Acknowledged++
			acked = append(acked, m)
		}
		if m.deliveries > 0 {
			r.Received++
			if m.deliveries > 1 {
				r.Duplicated += m.deliveries - 1
				r.DuplicatedIDs++
			}
		}
		switch {
		case m.deliveries > 0 && !m.invoked:
			r.Unexpected++
		case m.deliveries > 0 && !m.acked:
			r.Recovered++
			if m.unknowns == 0 && m.fails > 0 {
				r.RecoveredFailed++
			}
		case m.deliveries == 0 && m.deadLettered:
			r.DeadLettered++
		case m.deliveries == 0 && m.acked:
			lost = append(lost, m)
		case m.deliveries == 0 && m.invoked:
			r.Unconfirmed++
		}
	}
	r.Lost = len(lost)
	sort.Slice(lost, func(i, j int) bool {
		if !lost[i].sentAt.Equal(lost[j].sentAt) {
			return lost[i].sentAt.Before(lost[j].sentAt)
		}
		return lost[i].id < lost[j].id
	})
	lostSet := make(map[*msg]bool, len(lost))
	for _, m := range lost {
		lostSet[m] = true
	}
	places := attribute(r, acked, lostSet)
	for _, m := range lost {
		phase, fi := phaseOf(r.Faults, sec(m.sentAt))
		r.LostByPhase[phase]++
		r.LostByProducer[m.producer]++
		if fi >= 0 {
			r.Faults[fi].LostDuring++
		}
		bucket(m.sentAt).Lost++
		if opt.LostSample > 0 && len(r.LostSample) < opt.LostSample {
			r.LostSample = append(r.LostSample, LostMessage{ID: m.id, Producer: m.producer, Seq: m.seq,
				SentS: sec(m.sentAt), Phase: phase, Node: m.node,
				AckedS: sec(m.okAt), Window: places[m].window, AckNode: m.ackNode, Part: places[m].part})
		}
	}

	if span := sendEnd.Sub(sendStart).Seconds(); span > 0 {
		n := 0
		for _, m := range msgs {
			if m.acked && m.deliveries > 0 {
				n++
			}
		}
		r.Throughput = float64(n) / span
	}
	r.Latency = percentiles(latencies)
	r.EndToEnd = percentiles(e2e)
	for i, l := range bucketLat {
		if len(l) > 0 {
			p := percentiles(l)
			r.Timeline[i].P50Ms, r.Timeline[i].MaxMs = p.P50, p.Max
		}
	}
	r.Unavailable, r.UnavailableS = unavailability(sec, sendStart, sendEnd, okTimes, opt.UnavailableAfter)
	r.DualActive, r.DualActiveS = dualActive(acks, opt.ActiveGap, sec)
	timeToRecover(r, okTimes, okInvokes, sendStart, sendEnd, opt.UnavailableAfter)
	return r
}

// phaseOf places a send time (seconds) relative to the fault windows and
// returns the index of the window it is in, or -1.
func phaseOf(faults []FaultWindow, t float64) (string, int) {
	if len(faults) == 0 {
		return PhaseBefore, -1
	}
	first := math.Inf(1)
	for i, f := range faults {
		if t >= f.StartS && t <= f.EndS {
			return PhaseDuring, i
		}
		first = math.Min(first, f.StartS)
	}
	if t < first {
		return PhaseBefore, -1
	}
	return PhaseAfter, -1
}

// faultMatcher pairs fault-start and fault-end events by name, FIFO.
type faultMatcher struct {
	list []FaultWindow
	open map[string][]int
}

func (f *faultMatcher) start(e history.Event) {
	if f.open == nil {
		f.open = map[string][]int{}
	}
	f.list = append(f.list, FaultWindow{Name: e.Fault, StartTime: e.Time, Open: true})
	f.open[e.Fault] = append(f.open[e.Fault], len(f.list)-1)
}

func (f *faultMatcher) end(e history.Event) {
	q := f.open[e.Fault]
	if len(q) == 0 {
		// An end without a start: record it as a window of no length so
		// the report still shows it.
		f.list = append(f.list, FaultWindow{Name: e.Fault, StartTime: e.Time, EndTime: e.Time})
		return
	}
	i := q[0]
	f.open[e.Fault] = q[1:]
	f.list[i].EndTime, f.list[i].Open = e.Time, false
}

func (f *faultMatcher) windows(start, end time.Time) []FaultWindow {
	for i := range f.list {
		w := &f.list[i]
		if w.Open {
			w.EndTime = end
		}
		w.StartS, w.EndS = w.StartTime.Sub(start).Seconds(), w.EndTime.Sub(start).Seconds()
	}
	return f.list
}

// unavailability finds the gaps without an ok longer than min within
// [from, to].
func unavailability(sec func(time.Time) float64, from, to time.Time, oks []time.Time, min time.Duration) ([]Window, float64) {
	if from.IsZero() {
		return nil, 0
	}
	var out []Window
	total := 0.0
	prev := from
	gap := func(a, b time.Time) {
		if b.Sub(a) > min {
			out = append(out, Window{StartS: sec(a), EndS: sec(b)})
			total += b.Sub(a).Seconds()
		}
	}
	for _, t := range oks {
		gap(prev, t)
		prev = t
	}
	gap(prev, to)
	return out, total
}

// timeToRecover sets each fault's RecoverS. When the fault caused an
// outage, a gap of more than min without an ok that overlaps the fault's
// window, it is the time from the fault's start to the ok that ended the
// gap (nil when none did). A fault without such a gap is one the service
// rode through: its time to recover is that of the first ok of a send
// invoked at or after its start. Counting only from that first send, as
// before, reported a few milliseconds for a database killed under a broker
// whose connections kept committing for a moment before the outage began.
func timeToRecover(r *Result, oks, invokes []time.Time, phaseStart, phaseEnd time.Time, min time.Duration) {
	for i := range r.Faults {
		f := &r.Faults[i]
		if end, ok, found := outageEnd(oks, phaseStart, phaseEnd, f.StartTime, f.EndTime, min); found {
			if ok {
				d := end.Sub(f.StartTime).Seconds()
				f.RecoverS = &d
			}
			continue
		}
		j := sort.Search(len(oks), func(k int) bool { return !oks[k].Before(f.StartTime) })
		for ; j < len(oks); j++ {
			if !invokes[j].Before(f.StartTime) {
				d := oks[j].Sub(f.StartTime).Seconds()
				f.RecoverS = &d
				break
			}
		}
	}
}

// outageEnd finds the first gap of more than min between oks (sorted;
// the phase's start and end bound the first and last gap) that overlaps
// [from, to]; end is the ok that ended it, ok false when the phase ended
// first.
func outageEnd(oks []time.Time, phaseStart, phaseEnd, from, to time.Time, min time.Duration) (end time.Time, ok, found bool) {
	if phaseStart.IsZero() {
		return time.Time{}, false, false
	}
	prev := phaseStart
	gapOver := func(t time.Time) bool { return t.Sub(prev) > min && t.After(from) && !prev.After(to) }
	for _, t := range oks {
		if gapOver(t) {
			return t, true, true
		}
		if t.After(prev) {
			prev = t
		}
	}
	if gapOver(phaseEnd) {
		return phaseEnd, false, true
	}
	return time.Time{}, false, false
}

// String is a one-line summary for logs.
func (r *Result) String() string {
	return fmt.Sprintf("attempted %d, acknowledged %d, received %d, lost %d, duplicated %d, unexpected %d, recovered %d, unavailable %.1fs",
		r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Duplicated, r.Unexpected, r.Recovered, r.UnavailableS)
}
