package admin

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lossbench/lossbench/broker/server"
)

// metricsHandler serves /metrics from a registry of its own: the broker's
// collector, and Go's runtime and process collectors (RSS, descriptors).
func metricsHandler(h *handler) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{h}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// A scalar is one unlabelled broker metric read from a Metrics snapshot.
type scalar struct {
	name, help string
	typ        prometheus.ValueType
	get        func(*server.Metrics) float64
}

var (
	gauge   = prometheus.GaugeValue
	counter = prometheus.CounterValue
)

// scalars are the broker's unlabelled metrics. Their names are a contract
// (names_test.go): add, never rename.
var scalars = []scalar{
	{"refbroker_ready", "1 while the broker serves clients.", gauge, func(m *server.Metrics) float64 { return b2f(m.Ready) }},
	{"refbroker_failed", "1 once the store failed and the broker stopped (fail-stop).", gauge, func(m *server.Metrics) float64 { return b2f(m.Failed) }},
	{"refbroker_connections", "Open client connections (after CONNECT).", gauge, func(m *server.Metrics) float64 { return float64(m.Connections) }},
	{"refbroker_connections_total", "Accepted TCP connections.", counter, func(m *server.Metrics) float64 { return float64(m.ConnectionsTotal) }},
	{"refbroker_connections_refused_total", "Connections refused past --max-connections.", counter, func(m *server.Metrics) float64 { return float64(m.ConnectionsRefused) }},
	{"refbroker_messages_in_total", "Messages enqueued (persistent and not).", counter, func(m *server.Metrics) float64 { return float64(m.MessagesIn) }},
	{"refbroker_messages_out_total", "MESSAGE frames written to consumers.", counter, func(m *server.Metrics) float64 { return float64(m.MessagesOut) }},
	{"refbroker_messages_acked_total", "Deliveries acknowledged (auto or by client).", counter, func(m *server.Metrics) float64 { return float64(m.MessagesAcked) }},
	{"refbroker_messages_dead_lettered_total", "Messages moved to their dead-letter queue (/queue/DLQ.<name>) past --max-redeliveries.", counter, func(m *server.Metrics) float64 { return float64(m.DeadLettered) }},
	{"refbroker_messages_redelivered_total", "Deliveries of messages handed back by NACK or a departed consumer.", counter, func(m *server.Metrics) float64 { return float64(m.MessagesRedelivered) }},
	{"refbroker_acks_written_total", "Acknowledgements written to the store.", counter, func(m *server.Metrics) float64 { return float64(m.StoreAcks) }},
	{"refbroker_receipts_total", "RECEIPT frames sent.", counter, func(m *server.Metrics) float64 { return float64(m.Receipts) }},
	{"refbroker_errors_total", "ERROR frames sent.", counter, func(m *server.Metrics) float64 { return float64(m.Errors) }},
	{"refbroker_duplicates_total", "SENDs not stored again because their dedup-id was known.", counter, func(m *server.Metrics) float64 { return float64(m.Duplicates) }},
	{"refbroker_dedup_ids", "dedup-ids remembered in the window.", gauge, func(m *server.Metrics) float64 { return float64(m.DedupWindow) }},
	{"refbroker_memory_body_bytes", "Message body bytes held in memory.", gauge, func(m *server.Metrics) float64 { return float64(m.MemoryBytes) }},
	{"refbroker_memory_bytes", "Bytes of messages held, per-message overhead included: what --max-memory bounds.", gauge, func(m *server.Metrics) float64 { return float64(m.MemoryHeld) }},
	{"refbroker_memory_limit_bytes", "--max-memory (0: no bound).", gauge, func(m *server.Metrics) float64 { return float64(m.MemoryLimit) }},
	{"refbroker_memory_waiting_sends", "SEND batches held by producer flow control now, waiting for memory.", gauge, func(m *server.Metrics) float64 { return float64(m.MemoryWaiting) }},
	{"refbroker_memory_waits_total", "SEND batches held by producer flow control at --max-memory.", counter, func(m *server.Metrics) float64 { return float64(m.MemoryWaits) }},
	{"refbroker_memory_refused_total", "SEND batches answered with an ERROR, not stored, after waiting --max-memory-wait.", counter, func(m *server.Metrics) float64 { return float64(m.MemoryRefused) }},
}

// queueMetrics are the per-queue gauges, labelled queue.
var queueMetrics = []struct {
	name, help string
	get        func(server.QueueStatus) int
}{
	{"refbroker_queue_depth", "Messages ready for delivery.", func(q server.QueueStatus) int { return q.Depth }},
	{"refbroker_queue_inflight", "Messages delivered and not yet acknowledged.", func(q server.QueueStatus) int { return q.Inflight }},
	{"refbroker_queue_consumers", "Subscriptions on the queue.", func(q server.QueueStatus) int { return q.Consumers }},
}

// reconnectMetrics are shown when the broker reconnects to its database.
var reconnectMetrics = []struct {
	name, help string
	typ        prometheus.ValueType
	get        func(ReconnectState) float64
}{
	{"refbroker_db_reconnecting", "1 while the broker has lost its database and reconnects.", gauge, func(r ReconnectState) float64 { return b2f(r.State == Reconnecting) }},
	{"refbroker_db_outages_total", "Database connections lost and reconnected to (or being).", counter, func(r ReconnectState) float64 { return float64(r.Outages) }},
	{"refbroker_db_last_outage_seconds", "Length of the last database outage that ended.", gauge, func(r ReconnectState) float64 { return float64(r.LastOutageMs) / 1000 }},
}

// collector turns a snapshot of the broker's counters into metrics at each
// scrape. It is unchecked (Describe sends nothing): the store's statistics
// are named at run time.
type collector struct{ h *handler }

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	var m server.Metrics
	if c.h.b != nil {
		m = c.h.b.Metrics()
	}
	// emit sends one sample; label, when given, is a name and a value.
	emit := func(name, help string, typ prometheus.ValueType, v float64, label ...string) {
		var keys []string
		if len(label) == 2 {
			keys, label = label[:1], label[1:]
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, keys, nil), typ, v, label...)
	}
	emit("refbroker_build_info", "Build information.", gauge, 1, "version", c.h.opts.Version)
	for _, s := range scalars {
		emit(s.name, s.help, s.typ, s.get(&m))
	}
	for _, f := range queueMetrics {
		for _, q := range m.Queues {
			emit(f.name, f.help, gauge, float64(f.get(q)), "queue", q.Name)
		}
	}

	h := m.ReceiptLatency
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, le := range h.Bounds {
		buckets[le] = h.Cumulative[i]
	}
	ch <- prometheus.MustNewConstHistogram(prometheus.NewDesc("refbroker_send_receipt_seconds",
		"Time from a SEND frame read to its RECEIPT queued, including the store write.", nil, nil),
		h.Count, h.Sum, buckets)

	for k, v := range m.Store {
		typ := gauge
		if strings.HasSuffix(k, "_total") {
			typ = counter
		}
		name := "refbroker_store_" + sanitize(k)
		if strings.HasPrefix(k, "journal_") { // the journal's own: refbroker_journal_disk_bytes
			name = "refbroker_" + sanitize(k)
		}
		emit(name, "Store statistic "+k+".", typ, v)
	}
	if c.h.opts.Reconnect != nil {
		rs := c.h.opts.Reconnect()
		for _, f := range reconnectMetrics {
			emit(f.name, f.help, f.typ, f.get(rs))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sanitize makes a store statistic key a valid metric name suffix.
func sanitize(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
