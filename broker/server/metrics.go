package server

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// LatencyBounds are the upper bounds, in seconds, of the send-to-receipt
// latency histogram buckets.
var LatencyBounds = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

type histogram struct {
	counts []atomic.Uint64 // per bucket, plus +Inf
	sumNs  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(LatencyBounds, s)
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
}

type metrics struct {
	connections         atomic.Int64
	connectionsTotal    atomic.Uint64
	connectionsRefused  atomic.Uint64
	messagesIn          atomic.Uint64
	messagesOut         atomic.Uint64
	messagesAcked       atomic.Uint64
	messagesRedelivered atomic.Uint64
	storeAcks           atomic.Uint64
	receipts            atomic.Uint64
	errors              atomic.Uint64
	duplicates          atomic.Uint64
	deadLettered        atomic.Uint64
	memoryWaits         atomic.Uint64
	memoryRefused       atomic.Uint64
	latency             histogram
}

func (m *metrics) init() { m.latency.counts = make([]atomic.Uint64, len(LatencyBounds)+1) }

// Histogram is a snapshot of a latency histogram in Prometheus terms.
type Histogram struct {
	Bounds     []float64 // upper bounds in seconds, without +Inf
	Cumulative []uint64  // count of observations <= each bound, then +Inf
	Sum        float64   // seconds
	Count      uint64
}

// QueueStatus describes one queue.
type QueueStatus struct {
	Name      string `json:"name"`
	Depth     int    `json:"depth"`    // ready, not yet delivered
	Inflight  int    `json:"inflight"` // delivered, not yet acked
	Consumers int    `json:"consumers"`
}

// Metrics is a snapshot of the broker's counters for /metrics.
type Metrics struct {
	Connections         int64
	ConnectionsTotal    uint64
	ConnectionsRefused  uint64 // past MaxConnections
	MessagesIn          uint64 // enqueued (persistent and not)
	MessagesOut         uint64 // MESSAGE frames written
	MessagesAcked       uint64 // deliveries acked (auto or by client)
	MessagesRedelivered uint64 // deliveries of handed-back messages
	StoreAcks           uint64 // acks written to the store
	Receipts            uint64
	Errors              uint64 // ERROR frames sent
	Duplicates          uint64 // SENDs dropped by dedup-id
	DeadLettered        uint64 // messages moved to their dead-letter queue
	DedupWindow         int    // dedup-ids remembered
	MemoryBytes         int64  // message bodies held in memory
	MemoryHeld          int64  // messages held, overhead included: what MaxMemory bounds
	MemoryLimit         int64  // MaxMemory; 0 without a bound
	MemoryWaiting       int    // SENDs waiting for room under MaxMemory now
	MemoryWaits         uint64 // SEND batches that had to wait for room
	MemoryRefused       uint64 // SEND batches refused after MemoryWait
	Queues              []QueueStatus
	ReceiptLatency      Histogram // SEND to RECEIPT queued
	Store               map[string]float64
	Failed              bool
	Ready               bool
}

// Metrics returns a snapshot of the broker's counters.
func (b *Broker) Metrics() Metrics {
	m := Metrics{
		Connections:         b.m.connections.Load(),
		ConnectionsTotal:    b.m.connectionsTotal.Load(),
		ConnectionsRefused:  b.m.connectionsRefused.Load(),
		MessagesIn:          b.m.messagesIn.Load(),
		MessagesOut:         b.m.messagesOut.Load(),
		MessagesAcked:       b.m.messagesAcked.Load(),
		MessagesRedelivered: b.m.messagesRedelivered.Load(),
		StoreAcks:           b.m.storeAcks.Load(),
		Receipts:            b.m.receipts.Load(),
		Errors:              b.m.errors.Load(),
		Duplicates:          b.m.duplicates.Load(),
		DeadLettered:        b.m.deadLettered.Load(),
		MemoryLimit:         b.opts.MaxMemory,
		MemoryWaits:         b.m.memoryWaits.Load(),
		MemoryRefused:       b.m.memoryRefused.Load(),
		DedupWindow:         b.dedup.size(),
		Queues:              b.queueStatus(),
		Failed:              b.isFailed(),
		Ready:               b.Ready(),
	}
	b.mu.Lock()
	m.MemoryBytes, m.MemoryHeld, m.MemoryWaiting = b.memBody, b.memBytes, b.memWaiting
	b.mu.Unlock()
	h := Histogram{Bounds: LatencyBounds, Cumulative: make([]uint64, len(LatencyBounds)+1)}
	var n uint64
	for i := range b.m.latency.counts {
		n += b.m.latency.counts[i].Load()
		h.Cumulative[i] = n
	}
	h.Count = n
	h.Sum = time.Duration(b.m.latency.sumNs.Load()).Seconds()
	m.ReceiptLatency = h
	if s, ok := b.st.(store.Statser); ok {
		m.Store = s.Stats()
	}
	return m
}

func (b *Broker) queueStatus() []QueueStatus {
	b.mu.Lock()
	qs := make([]QueueStatus, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, QueueStatus{Name: q.name, Depth: q.depth(), Inflight: q.inflight, Consumers: len(q.subs)})
	}
	b.mu.Unlock()
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	return qs
}

// Status is the broker's state for /status.
type Status struct {
	Ready       bool          `json:"ready"`
	Store       string        `json:"store"`
	Failed      string        `json:"failed,omitempty"`
	Version     string        `json:"version"`
	Connections int64         `json:"connections"`
	Queues      []QueueStatus `json:"queues"`
	// Mirrors are the copies of a mirrored store (store.MirrorReporter).
	Mirrors []store.MirrorStatus `json:"mirrors,omitempty"`
}

// Status returns the broker's state.
func (b *Broker) Status() Status {
	st := Status{
		Ready:       b.Ready(),
		Store:       "unknown",
		Version:     b.opts.Version,
		Connections: b.m.connections.Load(),
		Queues:      b.queueStatus(),
	}
	if n, ok := b.st.(store.Namer); ok {
		st.Store = n.Name()
	}
	if m, ok := b.st.(store.MirrorReporter); ok {
		st.Mirrors = m.Mirrors()
	}
	if err := b.Err(); err != nil {
		st.Failed = err.Error()
	}
	return st
}
