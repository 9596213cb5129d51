package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/server"
	"github.com/lossbench/lossbench/broker/stomp"
	"github.com/lossbench/lossbench/broker/store/faultstore"
	"github.com/lossbench/lossbench/broker/store/memstore"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// sendRaw connects and sends one receipted persistent message.
func sendRaw(t *testing.T, addr, dest string) (net.Conn, *stomp.Frame) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	io.WriteString(nc, "CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:"+dest+"\npersistent:true\nreceipt:1\n\nhello\x00")
	r := stomp.NewReader(nc, stomp.Limits{})
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var last *stomp.Frame
	for range 2 {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		last = f
	}
	return nc, last
}

func TestAdmin(t *testing.T) {
	st := faultstore.New(memstore.New(), 1)
	b := server.New(st, server.Options{Version: "test"})
	srv := httptest.NewServer(Handler(b, Options{Version: "test"}))
	defer srv.Close()

	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get(t, srv.URL+"/readyz"); code != 503 {
		t.Fatalf("readyz before recovery: %d", code)
	}
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go b.Serve(ln)
	defer b.Shutdown(context.Background())
	if code, _ := get(t, srv.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz after recovery: %d", code)
	}
	_, f := sendRaw(t, ln.Addr().String(), `/queue/q"1`)
	if f.Command != "RECEIPT" {
		t.Fatalf("got %s", f.Command)
	}

	code, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	for _, want := range []string{
		"refbroker_connections 1\n",
		"refbroker_messages_in_total 1\n",
		"refbroker_receipts_total 1\n",
		`refbroker_queue_depth{queue="/queue/q\"1"} 1` + "\n",
		`refbroker_send_receipt_seconds_bucket{le="+Inf"} 1` + "\n",
		"refbroker_send_receipt_seconds_count 1\n",
		"# TYPE refbroker_send_receipt_seconds histogram\n",
		"refbroker_store_live_messages 1\n",
		"# TYPE refbroker_store_writes_total counter\n",
		"# TYPE process_open_fds gauge\n",
		"# TYPE go_goroutines gauge\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every line is a comment or "name{labels} value".
	line := regexp.MustCompile(`^(# (HELP|TYPE) .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eInfNa]+)$`)
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		if !line.MatchString(l) {
			t.Errorf("bad exposition line %q", l)
		}
	}

	code, body = get(t, srv.URL+"/status")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 {
		t.Fatalf("status %d %v: %s", code, err, body)
	}
	if s.Role != "master" || s.Store != "fault(memory)" || !s.Ready || s.Version != "test" || len(s.Queues) != 1 || s.Queues[0].Depth != 1 {
		t.Fatalf("status %+v", s)
	}
	if s.StoreStats["live_messages"] != 1 {
		t.Fatalf("status store_stats %v, want live_messages 1 from the store", s.StoreStats)
	}

	// The second write fails: the broker fails stop and /readyz says why.
	sendRaw(t, ln.Addr().String(), "/queue/q2")
	<-b.Failed()
	code, body = get(t, srv.URL+"/readyz")
	if code != 503 || !strings.Contains(body, "injected") {
		t.Fatalf("readyz after failure: %d %q", code, body)
	}
	_, body = get(t, srv.URL+"/status")
	json.Unmarshal([]byte(body), &s)
	if !strings.Contains(s.Failed, "injected") || s.Ready {
		t.Fatalf("status after failure %+v", s)
	}
	if _, body = get(t, srv.URL+"/metrics"); !strings.Contains(body, "refbroker_failed 1\n") {
		t.Fatal("metrics do not show the failure")
	}
}

// TestLeaseRole: a standby (no broker yet) answers /readyz 503 with the
// holder and /status role standby; once master over a ready broker, 200
// and role master with the epoch; a lost lease is 503 again at once.
func TestLeaseRole(t *testing.T) {
	var mu sync.Mutex
	ls := LeaseState{Role: "standby", Owner: "b", Holder: "a", Epoch: 0}
	opts := Options{Version: "test", Lease: func() LeaseState { mu.Lock(); defer mu.Unlock(); return ls }}
	set := func(f func(*LeaseState)) { mu.Lock(); f(&ls); mu.Unlock() }
	status := func(url string) Status {
		t.Helper()
		code, body := get(t, url+"/status")
		var s Status
		if err := json.Unmarshal([]byte(body), &s); err != nil || code != 200 {
			t.Fatalf("status %d %v: %s", code, err, body)
		}
		return s
	}

	standby := httptest.NewServer(Handler(nil, opts))
	defer standby.Close()
	if code, body := get(t, standby.URL+"/readyz"); code != 503 || !strings.Contains(body, `standby: the lease is held by "a"`) {
		t.Fatalf("standby readyz %d %q", code, body)
	}
	if s := status(standby.URL); s.Role != "standby" || s.Ready || s.Lease == nil || s.Lease.Holder != "a" || s.Queues == nil {
		t.Fatalf("standby status %+v", s)
	}
	if code, body := get(t, standby.URL+"/metrics"); code != 200 || !strings.Contains(body, "refbroker_ready 0\n") {
		t.Fatalf("standby metrics %d %q", code, body)
	}

	set(func(l *LeaseState) { l.Role, l.Holder, l.Epoch = "master", "b", 7 })
	b := server.New(memstore.New(), server.Options{Version: "test"})
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	master := httptest.NewServer(Handler(b, opts))
	defer master.Close()
	if code, body := get(t, master.URL+"/readyz"); code != 200 {
		t.Fatalf("master readyz %d %q", code, body)
	}
	if s := status(master.URL); s.Role != "master" || !s.Ready || s.Lease.Epoch != 7 || s.Store != "memory" {
		t.Fatalf("master status %+v", s)
	}

	set(func(l *LeaseState) { l.Role, l.Reason = "lost", "no renewal within the lease" })
	if code, body := get(t, master.URL+"/readyz"); code != 503 || !strings.Contains(body, "lease lost: no renewal") {
		t.Fatalf("lost readyz %d %q", code, body)
	}
	if s := status(master.URL); s.Role != "lost" || s.Ready {
		t.Fatalf("lost status %+v", s)
	}
}

// TestReconnectRole: while the database is lost (no broker), /readyz is
// 503 naming the outage, /status role "reconnecting" with attempts and
// the last error, and the metrics show it; serving again, 200 and the
// outage counted.
func TestReconnectRole(t *testing.T) {
	var mu sync.Mutex
	rs := ReconnectState{State: Reconnecting, Attempts: 3, LastError: "connection refused", DownForMs: 1500, Outages: 1}
	opts := Options{Version: "test", Reconnect: func() ReconnectState { mu.Lock(); defer mu.Unlock(); return rs }}

	down := httptest.NewServer(Handler(nil, opts))
	defer down.Close()
	if code, body := get(t, down.URL+"/readyz"); code != 503 ||
		!strings.Contains(body, "reconnecting to the database (down 1.5s, 3 attempts failed): connection refused") {
		t.Fatalf("reconnecting readyz %d %q", code, body)
	}
	var s Status
	_, body := get(t, down.URL+"/status")
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Role != Reconnecting || s.Ready || s.Reconnect == nil || s.Reconnect.Attempts != 3 || s.Reconnect.LastError != "connection refused" {
		t.Fatalf("reconnecting status %s", body)
	}
	if _, body := get(t, down.URL+"/metrics"); !strings.Contains(body, "refbroker_db_reconnecting 1\n") ||
		!strings.Contains(body, "refbroker_db_outages_total 1\n") {
		t.Fatalf("reconnecting metrics:\n%s", body)
	}

	mu.Lock()
	rs = ReconnectState{State: "serving", Outages: 1, LastOutageMs: 2500}
	mu.Unlock()
	b := server.New(memstore.New(), server.Options{Version: "test"})
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(Handler(b, opts))
	defer up.Close()
	if code, body := get(t, up.URL+"/readyz"); code != 200 {
		t.Fatalf("serving readyz %d %q", code, body)
	}
	s = Status{}
	_, body = get(t, up.URL+"/status")
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Role != "master" || !s.Ready || s.Reconnect == nil || s.Reconnect.Outages != 1 || s.Reconnect.LastOutageMs != 2500 {
		t.Fatalf("serving status %s", body)
	}
	if _, body := get(t, up.URL+"/metrics"); !strings.Contains(body, "refbroker_db_reconnecting 0\n") ||
		!strings.Contains(body, "refbroker_db_last_outage_seconds 2.5\n") {
		t.Fatalf("serving metrics:\n%s", body)
	}
}
