package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/admin"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
	"github.com/lossbench/lossbench/chaos/freeport"
)

// These tests run two real refbrokers with --lease on one database: a
// SQLite file in a shared directory, or a PostgreSQL server started by
// chaos/dbserver (skipped when it is not installed).

var dbs = dbtest.NewPool("refbroker")

func TestMain(m *testing.M) {
	code := m.Run()
	dbs.Close()
	os.Exit(code)
}

// Short lease timings: a standby takes over 2s after the last renewal;
// the master stops acknowledging 500ms before.
const (
	leaseTTL    = 2 * time.Second
	leaseMargin = 500 * time.Millisecond
)

var leaseKinds = []string{"sqlite", "postgres", "mariadb"}

// leaseDB returns the store flags of a fresh database shared by a test's
// brokers.
func leaseDB(t *testing.T, kind string) []string {
	o := dbs.Fresh(t, kind)
	if kind == "sqlite" {
		return []string{"--store", "jdbc", "--data", filepath.Dir(o.Path)} // <data>/refbroker.db
	}
	return []string{"--store", "jdbc", "--db-driver", o.Driver, "--dsn", o.DSN, "--data", t.TempDir()}
}

// leased is a refbroker started with its admin endpoint (startAdmin),
// with --lease or without.
type leased struct {
	*proc
	name  string
	admin string // host:port
}

var adminOn = regexp.MustCompile(`admin on http://(127\.0\.0\.1:\d+)`)

// startLeased runs a broker named name with --lease on the store flags db,
// its STOMP listener to be on a port chosen now, and waits for its admin.
func startLeased(t *testing.T, name string, db []string, extra ...string) *leased {
	t.Helper()
	return startHA(t, name, append([]string{"--lease"}, db...), extra...)
}

// startHA runs a broker named name with the master/slave flags ha (--lease
// or --shared and the store's) and short lease timings, its STOMP
// listener to be on a port chosen now, and waits for its admin.
func startHA(t *testing.T, name string, ha []string, extra ...string) *leased {
	t.Helper()
	args := append([]string{"--lease-owner", name,
		"--lease-renew", "200ms", "--lease-ttl", leaseTTL.String(), "--lease-margin", leaseMargin.String()}, ha...)
	return startAdmin(t, name, append(args, extra...)...)
}

// startAdmin runs a broker named name (in messages) with args, its STOMP
// listener to be on a port chosen now, and waits for its admin endpoint
// (not for STOMP: a standby has none).
func startAdmin(t *testing.T, name string, args ...string) *leased {
	t.Helper()
	addr := freeAddr(t)
	p := launch(t, append([]string{"--listen", addr, "--admin", "127.0.0.1:0"}, args...)...)
	p.addr = addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := adminOn.FindStringSubmatch(p.stderr.String()); m != nil {
			return &leased{proc: p, name: name, admin: m[1]}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before its admin was up: %v\n%s", name, p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no admin after 20s:\n%s", name, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free now that no other
// process is handed before the broker binds it (a standby binds only once
// it takes over): see chaos/freeport.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// ready returns the broker's /readyz status code (0 when unreachable).
func (l *leased) ready() int {
	resp, err := http.Get("http://" + l.admin + "/readyz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (l *leased) status(t *testing.T) admin.Status {
	t.Helper()
	resp, err := http.Get("http://" + l.admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s admin.Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// stompOpen reports whether anything accepts connections on the broker's
// STOMP address.
func (l *leased) stompOpen() bool {
	c, err := net.DialTimeout("tcp", l.addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// waitReady waits until the broker's /readyz is 200 and returns when.
func (l *leased) waitReady(t *testing.T, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if l.ready() == 200 {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %v:\n%s", l.name, within, l.stderr)
	return time.Time{}
}

// masterAndStandby starts a with the master/slave flags ha, waits until
// it is master, then starts b and checks that b stands by: /readyz 503,
// /status standby naming a, no STOMP listener.
func masterAndStandby(t *testing.T, ha []string) (a, b *leased) {
	t.Helper()
	a = startHA(t, "broker-a", ha)
	a.waitReady(t, 20*time.Second)
	b = startHA(t, "broker-b", ha)
	time.Sleep(500 * time.Millisecond) // b has read the lease row by now
	if code := b.ready(); code != 503 {
		t.Fatalf("standby readyz %d, want 503", code)
	}
	if s := b.status(t); s.Role != "standby" || s.Lease == nil || s.Lease.Holder != a.name {
		t.Fatalf("standby status: role %q, lease %+v", s.Role, s.Lease)
	}
	if s := a.status(t); s.Role != "master" || s.Lease == nil || s.Lease.Epoch < 1 {
		t.Fatalf("master status: role %q, lease %+v", s.Role, s.Lease)
	}
	if b.stompOpen() {
		t.Fatal("the standby accepts STOMP connections")
	}
	if code := a.ready(); code != 200 {
		t.Fatalf("master readyz %d after the standby started", code)
	}
	return a, b
}

// TestLeaseKillMaster: two brokers on one database, producers with
// receipts on the master, kill -9 of the master mid-load: the standby is
// ready within about the lease TTL and holds every receipted message.
func TestLeaseKillMaster(t *testing.T) {
	for _, kind := range leaseKinds {
		t.Run(kind, func(t *testing.T) { testKillMaster(t, kind, append([]string{"--lease"}, leaseDB(t, kind)...)) })
	}
}

// testKillMaster is TestLeaseKillMaster on the master/slave flags ha.
func testKillMaster(t *testing.T, kind string, ha []string) {
	a, b := masterAndStandby(t, ha)
	const killAt = 400
	stop := make(chan struct{})
	var once sync.Once
	var (
		killed time.Time
		// earliest is the soonest after the kill a standby may take over:
		// the TTL after the master's last renewal, read from its /status.
		earliest time.Duration
		known    bool
	)
	killNow := func() {
		since, ok := a.sinceRenewal()
		read := time.Now()
		killed = time.Now()
		a.kill9()
		earliest, known = leaseTTL-since-killed.Sub(read), ok
		close(stop)
	}
	kill := func(n int) {
		if n >= killAt {
			once.Do(killNow)
		}
	}
	got := load(t, a.addr, 4, stop, kill)
	once.Do(killNow)
	if code := a.exitCode(); code != -int(syscall.SIGKILL) {
		t.Fatalf("master exit %d, want killed", code)
	}
	readyAt := b.waitReady(t, leaseTTL+8*time.Second)
	takeover := readyAt.Sub(killed)
	if s := b.status(t); s.Role != "master" || s.Lease.Epoch < 2 {
		t.Fatalf("new master status: role %q, lease %+v", s.Role, s.Lease)
	}
	seen := drain(t, b.addr)
	lost, extra := lostExtra(got, seen)
	t.Logf("%s: %d receipted before kill -9, takeover (ready) %v after the kill (ttl %v, earliest %v), %d lost, %d unreceipted recovered",
		kind, len(got), takeover.Round(time.Millisecond), leaseTTL, earliest.Round(time.Millisecond), lost, extra)
	if len(got) < killAt {
		t.Fatalf("only %d receipted", len(got))
	}
	if lost != 0 {
		t.Fatalf("%d of %d receipted messages lost in the takeover", lost, len(got))
	}
	// The master renews every 200ms when it can; on a loaded machine its
	// last renewal may be older, so the bound is read, not assumed.
	if known && takeover < earliest-50*time.Millisecond {
		t.Fatalf("took over %v after the kill, before the lease could expire (%v: ttl %v after the last renewal)", takeover, earliest, leaseTTL)
	}
}

// sinceRenewal is how long ago the master started its last successful
// renewal, from its /status (ok false when it does not say).
func (l *leased) sinceRenewal() (time.Duration, bool) {
	resp, err := http.Get("http://" + l.admin + "/status")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var s admin.Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.Lease == nil || s.Lease.Role != "master" {
		return 0, false
	}
	return leaseTTL - leaseMargin - time.Duration(s.Lease.ValidForMs)*time.Millisecond, true
}

// TestLeasePausedMasterIsFenced: SIGSTOP of the master past its lease; the
// standby takes over; a SEND that reaches the ex-master after the takeover
// is not receipted, the resumed ex-master exits 1 (lease lost), and every
// message receipted before the pause is on the new master.
func TestLeasePausedMasterIsFenced(t *testing.T) {
	for _, kind := range leaseKinds {
		t.Run(kind, func(t *testing.T) { testPausedMaster(t, kind, append([]string{"--lease"}, leaseDB(t, kind)...)) })
	}
}

// testPausedMaster is TestLeasePausedMasterIsFenced on the master/slave
// flags ha. The takeover is the standby holding the lease: with --shared
// it opens the journal only once the ex-master has exited.
func testPausedMaster(t *testing.T, kind string, ha []string) {
	a, b := masterAndStandby(t, ha)
	c := dialBroker(t, a.addr)
	const before = 50
	for i := range before {
		body := fmt.Sprintf("before-%03d", i)
		if err := c.Send("/queue/crash", "text/plain", []byte(body), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	since, known := a.sinceRenewal()
	read := time.Now()
	paused := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	earliest := leaseTTL - since - paused.Sub(read) // TTL after the last renewal
	if !pollUntil(leaseTTL+8*time.Second, func() bool {
		s := b.status(t)
		return s.Lease != nil && s.Lease.Role == "master"
	}) {
		t.Fatalf("the standby did not take the lease of a paused master:\n%s", b.stderr)
	}
	took := time.Since(paused)
	if known && took < earliest-50*time.Millisecond {
		t.Fatalf("took the lease %v after the pause, before it could expire (%v: ttl %v after the last renewal)", took, earliest, leaseTTL)
	}
	if s := b.status(t); s.Lease.Epoch < 2 {
		t.Fatalf("new master's epoch %d, want at least 2", s.Lease.Epoch)
	}
	t.Logf("%s: standby took the lease %v after SIGSTOP of the master (ttl %v)", kind, took.Round(time.Millisecond), leaseTTL)

	// Sent to the paused ex-master: read only once it resumes.
	sent := make(chan error, 1)
	go func() {
		sent <- c.Send("/queue/crash", "text/plain", []byte("after-takeover"), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true"))
	}()
	time.Sleep(200 * time.Millisecond)
	resumed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("the ex-master receipted a SEND after the takeover")
		}
		t.Logf("%s: SEND to the resumed ex-master: %v", kind, err)
	case <-time.After(15 * time.Second):
		t.Fatal("SEND to the resumed ex-master neither receipted nor failed")
	}
	if code := a.exitCode(); code != 1 {
		t.Fatalf("resumed ex-master exit %d, want 1", code)
	}
	out := a.stderr.String()
	if !strings.Contains(out, "lease lost") && !strings.Contains(out, "fenced") {
		t.Fatalf("ex-master does not say it lost the lease:\n%s", out)
	}
	if m := regexp.MustCompile(`FATAL: .*`).FindString(out); m != "" {
		t.Logf("%s: ex-master: %s", kind, m)
	}
	readyAt := b.waitReady(t, 20*time.Second)
	t.Logf("%s: new master ready %v after SIGCONT of the ex-master", kind, max(0, readyAt.Sub(resumed)).Round(time.Millisecond))
	seen := drain(t, b.addr)
	for i := range before {
		if body := fmt.Sprintf("before-%03d", i); seen[body] != 1 {
			t.Errorf("%s: seen %d times on the new master", body, seen[body])
		}
	}
	if seen["after-takeover"] != 0 {
		t.Error("the ex-master stored a SEND after the takeover")
	}
	t.Logf("%s: %d receipted before the pause, %d on the new master", kind, before, len(seen))
}

// TestLeaseSIGTERMHandsOver: SIGTERM releases the lease, so the standby
// takes over at once instead of waiting out the TTL; a standby exits 0 on
// SIGTERM too.
func TestLeaseSIGTERMHandsOver(t *testing.T) {
	testSIGTERMHandsOver(t, append([]string{"--lease"}, leaseDB(t, "sqlite")...))
}

// testSIGTERMHandsOver is TestLeaseSIGTERMHandsOver on the master/slave
// flags ha.
func testSIGTERMHandsOver(t *testing.T, ha []string) {
	a := startHA(t, "broker-a", ha, "--lease-ttl", "10s")
	a.waitReady(t, 20*time.Second)
	b := startHA(t, "broker-b", ha, "--lease-ttl", "10s")
	c := startHA(t, "broker-c", ha, "--lease-ttl", "10s")
	time.Sleep(300 * time.Millisecond)
	stopped := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.exitCode(); code != 0 {
		t.Fatalf("master exit %d after SIGTERM", code)
	}
	// One of the two standbys takes over, well before the 10s TTL.
	deadline := time.Now().Add(5 * time.Second)
	var master, standby *leased
	for master == nil && time.Now().Before(deadline) {
		if b.ready() == 200 {
			master, standby = b, c
		} else if c.ready() == 200 {
			master, standby = c, b
		}
		time.Sleep(20 * time.Millisecond)
	}
	if master == nil {
		t.Fatal("no standby took over within 5s of the master's SIGTERM")
	}
	t.Logf("%s took over %v after the master's SIGTERM (ttl 10s)", master.name, time.Since(stopped).Round(time.Millisecond))
	if code := standby.ready(); code != 503 {
		t.Fatalf("two masters: %s readyz %d", standby.name, code)
	}
	standby.cmd.Process.Signal(syscall.SIGTERM)
	if code := standby.exitCode(); code != 0 {
		t.Fatalf("standby exit %d after SIGTERM", code)
	}
}

// TestLeaseNeedsJDBC: --lease with a store that has no shared database is
// a configuration error.
func TestLeaseNeedsJDBC(t *testing.T) {
	p := launch(t, "--lease", "--store", "journal", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin=")
	if code := p.exitCode(); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, p.stderr)
	}
	if out := p.stderr.String(); !strings.Contains(out, "lease: needs store jdbc or journaled-jdbc") {
		t.Fatalf("stderr does not explain:\n%s", out)
	}
}
