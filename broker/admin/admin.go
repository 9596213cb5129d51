// Package admin is the refbroker's HTTP admin endpoint:
//
//	/healthz  200 while the process runs
//	/readyz   200 only while the broker serves clients (recovered, not
//	          failed, not shutting down, not reconnecting to its database,
//	          and master if it has a lease), 503 with the reason otherwise
//	/metrics  Prometheus exposition (client_golang, metrics.go), with the
//	          Go runtime and process collectors
//	/status   JSON: role, store, readiness, failure, queues, version
package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lossbench/lossbench/broker/server"
	"github.com/lossbench/lossbench/broker/store"
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
	// Replication, when set, reports replicated master/slave (refbroker
	// --replication-listen, broker/replication) as /status's replication.
	Replication func() any
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
	mux.Handle("GET /metrics", metricsHandler(h))
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
	// Mirrors are the mirrored journal's copies: healthy, failed (with
	// the error), stale, or rebuilding (with its progress).
	Mirrors []store.MirrorStatus `json:"mirrors,omitempty"`
	// Lease is the database master/slave lease, if the broker has one.
	Lease *LeaseState `json:"lease,omitempty"`
	// Reconnect is the database connection, if the broker reconnects.
	Reconnect *ReconnectState `json:"reconnect,omitempty"`
	// Replication is replicated master/slave: role, peers, lag, in-sync.
	Replication any `json:"replication,omitempty"`
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	out := Status{Role: h.opts.Role, Version: h.opts.Version}
	if h.b != nil {
		st := h.b.Status()
		out.Store, out.Ready, out.Failed = st.Store, st.Ready, st.Failed
		out.Connections, out.Queues, out.StoreStats = st.Connections, st.Queues, h.b.Metrics().Store
		out.Mirrors = st.Mirrors
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
	if h.opts.Replication != nil {
		out.Replication = h.opts.Replication()
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
