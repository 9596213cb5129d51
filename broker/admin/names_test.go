package admin

import (
	"context"
	"net"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/server"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

// keptMetrics are the metric families /metrics exposed, with their types,
// when the exposition was written by hand (before client_golang). They are
// a contract for dashboards, the bench (refbroker_store_fsyncs_total …) and
// the gate: none may disappear or change type. The refbroker_store_* names
// come from the store's statistics (memstore's here).
var keptMetrics = map[string]string{
	"refbroker_build_info":                 "gauge",
	"refbroker_ready":                      "gauge",
	"refbroker_failed":                     "gauge",
	"refbroker_connections":                "gauge",
	"refbroker_connections_total":          "counter",
	"refbroker_messages_in_total":          "counter",
	"refbroker_messages_out_total":         "counter",
	"refbroker_messages_acked_total":       "counter",
	"refbroker_messages_redelivered_total": "counter",
	"refbroker_acks_written_total":         "counter",
	"refbroker_receipts_total":             "counter",
	"refbroker_errors_total":               "counter",
	"refbroker_duplicates_total":           "counter",
	"refbroker_dedup_ids":                  "gauge",
	"refbroker_memory_body_bytes":          "gauge",
	"refbroker_queue_depth":                "gauge",
	"refbroker_queue_inflight":             "gauge",
	"refbroker_queue_consumers":            "gauge",
	"refbroker_send_receipt_seconds":       "histogram",
	"refbroker_store_writes_total":         "counter",
	"refbroker_store_bytes_written_total":  "counter",
	"refbroker_store_live_messages":        "gauge",
	"refbroker_db_reconnecting":            "gauge",
	"refbroker_db_outages_total":           "counter",
	"refbroker_db_last_outage_seconds":     "gauge",
}

// TestMetricNamesKept: every family of keptMetrics is still exposed, with
// its type, by a broker holding one message on one queue and reconnecting
// to its database.
func TestMetricNamesKept(t *testing.T) {
	b := server.New(memstore.New(), server.Options{Version: "test"})
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(b, Options{Version: "test",
		Reconnect: func() ReconnectState { return ReconnectState{State: "serving"} }}))
	defer srv.Close()
	_, f := sendRaw(t, serveSTOMP(t, b), "/queue/a")
	if f.Command != "RECEIPT" {
		t.Fatalf("got %s", f.Command)
	}
	_, body := get(t, srv.URL+"/metrics")
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(body, -1) {
		got[m[1]] = m[2]
	}
	for name, typ := range keptMetrics {
		if got[name] != typ {
			t.Errorf("metric %s: type %q, want %q", name, got[name], typ)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", body)
	}
}

// serveSTOMP serves b on a loopback port until the test ends and returns
// its address.
func serveSTOMP(t *testing.T, b *server.Broker) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln)
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// TestJournalMetrics: the journal's disk use and live ratio are
// refbroker_journal_disk_bytes and refbroker_journal_live_ratio, and are
// in /status's store statistics.
func TestJournalMetrics(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	b := server.New(j, server.Options{Version: "test"})
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(b, Options{Version: "test"}))
	defer srv.Close()
	if _, f := sendRaw(t, serveSTOMP(t, b), "/queue/a"); f.Command != "RECEIPT" {
		t.Fatalf("got %s", f.Command)
	}
	_, body := get(t, srv.URL+"/metrics")
	for _, re := range []string{`(?m)^# TYPE refbroker_journal_disk_bytes gauge$`, `(?m)^refbroker_journal_disk_bytes [1-9][0-9]*$`,
		`(?m)^refbroker_journal_live_ratio [0-9.e+-]+$`} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("/metrics lacks %s:\n%s", re, body)
		}
	}
	_, st := get(t, srv.URL+"/status")
	if !strings.Contains(st, `"journal_disk_bytes"`) || !strings.Contains(st, `"journal_live_ratio"`) {
		t.Errorf("/status lacks the journal's disk use: %s", st)
	}
}
