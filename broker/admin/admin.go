// Package admin is the refbroker's HTTP admin endpoint:
//
//	/healthz  200 while the process runs
//	/readyz   200 only while the broker serves clients (recovered, not
//	          failed, not shutting down, not reconnecting to its database,
//	          and master if it has a lease), 503 with the reason otherwise
//	/metrics  Prometheus text exposition format 0.0.4, written by hand
//	/status   JSON: role, store, readiness, failure, queues, version
package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lossbench/lossbench/broker/server"
)

// Options configure the handler.
type Options struct {
	// Role is reported in /status; "master" when empty. Lease, when set,
	// overrides it.
	Role string
	// Lease, when set, reports the database master/slave lease live: its
	// role is /status's, it is shown there, and /readyz is 503 while the
	// role is not "master".
	Lease func() LeaseState
	// Reconnect, when set, reports the database reconnection (refbroker
	// --db-reconnect) live: while its State is "reconnecting", /readyz is
	// 503 and /status's role is "reconnecting".
	Reconnect func() ReconnectState
	// Version is reported in /status and as refbroker_build_info.
	Version string
}

// ReconnectState is the broker's connection to its database as /status
// shows it, when the broker reconnects after losing it.
type ReconnectState struct {
	State string `json:"state"` // serving or reconnecting
	// Attempts is how many reconnections failed in the current outage.
	Attempts int `json:"attempts"`
	// LastError is the error that began the outage or, once an attempt
	// failed, the last attempt's.
	LastError string `json:"last_error,omitempty"`
	// DownForMs is how long the current outage has lasted.
	DownForMs int64 `json:"down_for_ms,omitempty"`
	// Outages counts the outages since start; LastOutageMs is the length
	// of the last one that ended.
	Outages      int   `json:"outages"`
	LastOutageMs int64 `json:"last_outage_ms,omitempty"`
}

// Reconnecting is ReconnectState.State while the database is lost.
const Reconnecting = "reconnecting"

// LeaseState is a database master/slave lease (broker/lease's Status) as
// /status shows it.
type LeaseState struct {
	Role   string `json:"role"` // standby, master or lost
	Owner  string `json:"owner"`
	Holder string `json:"holder"` // the row's owner as last seen: the master
	Epoch  int64  `json:"epoch"`
	// ValidForMs is how long the master stays master without renewing.
	ValidForMs int64  `json:"valid_for_ms"`
	Reason     string `json:"reason,omitempty"` // why the lease was lost
}

// Handler serves the admin endpoints for b. b may be nil while there is no
// broker yet (a standby waiting for its lease): /readyz is then 503 and
// /status and /metrics show no broker state.
func Handler(b *server.Broker, opts Options) http.Handler {
	if opts.Role == "" {
		opts.Role = "master"
	}
	h := &handler{b: b, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /metrics", h.metrics)
	mux.HandleFunc("GET /status", h.status)
	return mux
}

type handler struct {
	b    *server.Broker
	opts Options
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.opts.Reconnect != nil {
		if rs := h.opts.Reconnect(); rs.State == Reconnecting {
			reason := fmt.Sprintf("reconnecting to the database (down %v, %d attempts failed): %s",
				time.Duration(rs.DownForMs)*time.Millisecond, rs.Attempts, rs.LastError)
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
	}
	if h.opts.Lease != nil {
		if ls := h.opts.Lease(); ls.Role != "master" {
			reason := ls.Role + ": the lease is held by " + strconv.Quote(ls.Holder)
			if ls.Role == "lost" {
				reason = "lease lost: " + ls.Reason
			}
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
	}
	if h.b == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if h.b.Ready() {
		io.WriteString(w, "ready\n")
		return
	}
	reason := "not serving (recovering or shutting down)"
	if err := h.b.Err(); err != nil {
		reason = err.Error()
	}
	http.Error(w, reason, http.StatusServiceUnavailable)
}

// Status is the /status document.
type Status struct {
	Role        string               `json:"role"`
	Store       string               `json:"store"`
	Ready       bool                 `json:"ready"`
	Failed      string               `json:"failed,omitempty"`
	Version     string               `json:"version"`
	Connections int64                `json:"connections"`
	Consumers   int                  `json:"consumers"`
	Queues      []server.QueueStatus `json:"queues"`
	// StoreStats are the store's own statistics (store.Statser), e.g. the
	// journaled-jdbc checkpoint lag: the window a lost journal loses.
	StoreStats map[string]float64 `json:"store_stats,omitempty"`
	// Lease is the database master/slave lease, if the broker has one.
	Lease *LeaseState `json:"lease,omitempty"`
	// Reconnect is the database connection, if the broker reconnects.
	Reconnect *ReconnectState `json:"reconnect,omitempty"`
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	out := Status{Role: h.opts.Role, Version: h.opts.Version}
	if h.b != nil {
		st := h.b.Status()
		out.Store, out.Ready, out.Failed = st.Store, st.Ready, st.Failed
		out.Connections, out.Queues, out.StoreStats = st.Connections, st.Queues, h.b.Metrics().Store
	}
	if h.opts.Lease != nil {
		ls := h.opts.Lease()
		out.Role, out.Lease = ls.Role, &ls
		out.Ready = out.Ready && ls.Role == "master"
	}
	if h.opts.Reconnect != nil {
		rs := h.opts.Reconnect()
		out.Reconnect = &rs
		if rs.State == Reconnecting {
			out.Role, out.Ready = Reconnecting, false
		}
	}
	for _, q := range out.Queues {
		out.Consumers += q.Consumers
	}
	if out.Queues == nil {
		out.Queues = []server.QueueStatus{}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var m server.Metrics
	if h.b != nil {
		m = h.b.Metrics()
	}
	WriteMetrics(w, m, h.opts.Version)
	if h.opts.Reconnect != nil {
		rs := h.opts.Reconnect()
		p := &promWriter{w: w}
		p.gauge("refbroker_db_reconnecting", "1 while the broker has lost its database and reconnects.", b2f(rs.State == Reconnecting))
		p.counter("refbroker_db_outages_total", "Database connections lost and reconnected to (or being).", float64(rs.Outages))
		p.gauge("refbroker_db_last_outage_seconds", "Length of the last database outage that ended.", float64(rs.LastOutageMs)/1000)
	}
}

// WriteMetrics writes m in the Prometheus text format.
func WriteMetrics(w io.Writer, m server.Metrics, version string) {
	p := &promWriter{w: w}
	p.family("refbroker_build_info", "gauge", "Build information.")
	p.sample("refbroker_build_info", `version="`+escapeLabel(version)+`"`, 1)
	p.gauge("refbroker_ready", "1 while the broker serves clients.", b2f(m.Ready))
	p.gauge("refbroker_failed", "1 once the store failed and the broker stopped (fail-stop).", b2f(m.Failed))
	p.gauge("refbroker_connections", "Open client connections (after CONNECT).", float64(m.Connections))
	p.counter("refbroker_connections_total", "Accepted TCP connections.", float64(m.ConnectionsTotal))
	p.counter("refbroker_messages_in_total", "Messages enqueued (persistent and not).", float64(m.MessagesIn))
	p.counter("refbroker_messages_out_total", "MESSAGE frames written to consumers.", float64(m.MessagesOut))
	p.counter("refbroker_messages_acked_total", "Deliveries acknowledged (auto or by client).", float64(m.MessagesAcked))
	p.counter("refbroker_messages_redelivered_total", "Deliveries of messages handed back by NACK or a departed consumer.", float64(m.MessagesRedelivered))
	p.counter("refbroker_acks_written_total", "Acknowledgements written to the store.", float64(m.StoreAcks))
	p.counter("refbroker_receipts_total", "RECEIPT frames sent.", float64(m.Receipts))
	p.counter("refbroker_errors_total", "ERROR frames sent.", float64(m.Errors))
	p.counter("refbroker_duplicates_total", "SENDs not stored again because their dedup-id was known.", float64(m.Duplicates))
	p.gauge("refbroker_dedup_ids", "dedup-ids remembered in the window.", float64(m.DedupWindow))
	p.gauge("refbroker_memory_body_bytes", "Message body bytes held in memory.", float64(m.MemoryBytes))

	for _, f := range []struct {
		name, help string
		get        func(server.QueueStatus) int
	}{
		{"refbroker_queue_depth", "Messages ready for delivery.", func(q server.QueueStatus) int { return q.Depth }},
		{"refbroker_queue_inflight", "Messages delivered and not yet acknowledged.", func(q server.QueueStatus) int { return q.Inflight }},
		{"refbroker_queue_consumers", "Subscriptions on the queue.", func(q server.QueueStatus) int { return q.Consumers }},
	} {
		p.family(f.name, "gauge", f.help)
		for _, q := range m.Queues {
			p.sample(f.name, `queue="`+escapeLabel(q.Name)+`"`, float64(f.get(q)))
		}
	}

	const hist = "refbroker_send_receipt_seconds"
	p.family(hist, "histogram", "Time from a SEND frame read to its RECEIPT queued, including the store write.")
	h := m.ReceiptLatency
	for i, le := range h.Bounds {
		p.sample(hist+"_bucket", `le="`+strconv.FormatFloat(le, 'g', -1, 64)+`"`, float64(h.Cumulative[i]))
	}
	p.sample(hist+"_bucket", `le="+Inf"`, float64(h.Count))
	p.sample(hist+"_sum", "", h.Sum)
	p.sample(hist+"_count", "", float64(h.Count))

	keys := make([]string, 0, len(m.Store))
	for k := range m.Store {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := "refbroker_store_" + sanitize(k)
		typ := "gauge"
		if strings.HasSuffix(k, "_total") {
			typ = "counter"
		}
		p.family(name, typ, "Store statistic "+k+".")
		p.sample(name, "", m.Store[k])
	}
}

type promWriter struct{ w io.Writer }

func (p *promWriter) family(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *promWriter) sample(name, labels string, v float64) {
	if labels != "" {
		name += "{" + labels + "}"
	}
	fmt.Fprintf(p.w, "%s %s\n", name, formatFloat(v))
}

func (p *promWriter) gauge(name, help string, v float64) {
	p.family(name, "gauge", help)
	p.sample(name, "", v)
}

func (p *promWriter) counter(name, help string, v float64) {
	p.family(name, "counter", help)
	p.sample(name, "", v)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
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
