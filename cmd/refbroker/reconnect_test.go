package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read the store's table

	"github.com/lossbench/lossbench/broker/admin"
	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// These tests run refbroker --store jdbc on PostgreSQL reached through a
// TCP proxy (toxiproxy, in process, dbtest.Link) that the test cuts,
// closing every connection and resetting new ones, as a database host
// that went away does, and restores on the same address.

// cutDB is a fresh PostgreSQL database behind a proxy.
type cutDB struct {
	proxy  *dbtest.Link
	flags  []string // refbroker's store flags, through the proxy
	direct string   // the DSN without the proxy, for the test's own reads
}

func proxiedPostgres(t *testing.T) *cutDB {
	t.Helper()
	srv := dbs.Server(t, dbserver.Postgres)
	opts := dbs.Fresh(t, "postgres")
	p, dsn := dbtest.Proxy(t, srv, opts.DSN, "refbroker->db")
	return &cutDB{proxy: p, direct: opts.DSN,
		flags: []string{"--store", "jdbc", "--db-driver", "postgres", "--dsn", dsn, "--data", t.TempDir()}}
}

// stored returns the bodies (without their padding) of the messages in
// the store's table.
func (d *cutDB) stored(t *testing.T) map[string]bool {
	t.Helper()
	db, err := sql.Open("pgx", d.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT body FROM lossbench_msgs")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		out[strings.TrimRight(string(body), ".")] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// retryLoad is producers that send persistent messages with receipts to
// /queue/crash and, when a send fails (the broker's ERROR, a broken or
// refused connection), dial again and resend the same message with the
// same dedup-id until it is receipted, or until stop.
type retryLoad struct {
	prefix string // of the bodies: <prefix><producer>-<n>
	mu     sync.Mutex
	acked  map[string]time.Time // body -> when its RECEIPT came
	failed int                  // sends that got no receipt
	errs   map[string]int       // their errors, by text
	wg     sync.WaitGroup
}

func startRetryLoad(addr string, producers int, stop <-chan struct{}) *retryLoad {
	return startRetryLoadAs("p", addr, producers, stop)
}

// startRetryLoadAs is startRetryLoad with bodies named after prefix, so
// that loads on several brokers do not collide.
func startRetryLoadAs(prefix, addr string, producers int, stop <-chan struct{}) *retryLoad {
	l := &retryLoad{prefix: prefix, acked: map[string]time.Time{}, errs: map[string]int{}}
	for p := range producers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.produce(addr, p, stop)
		}()
	}
	return l
}

func (l *retryLoad) produce(addr string, p int, stop <-chan struct{}) {
	var (
		c  *gostomp.Conn
		nc net.Conn
	)
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for i := 0; ; i++ {
		body := fmt.Sprintf("%s%d-%06d", l.prefix, p, i)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c == nil {
				var err error
				if c, nc, err = dialRetry(addr); err != nil { // refused while the broker reconnects
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			err := c.Send("/queue/crash", "text/plain", []byte(body+strings.Repeat(".", 1000)),
				gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Header("dedup-id", body))
			l.mu.Lock()
			if err == nil {
				l.acked[body] = time.Now()
			} else {
				l.failed++
				l.errs[err.Error()]++
			}
			l.mu.Unlock()
			if err == nil {
				break
			}
			// Not Disconnect: it waits for a receipt the broker that
			// closed the connection will never send.
			nc.Close()
			c, nc = nil, nil
		}
	}
}

// dialRetry connects a producer; every wait is bounded, so that a broken
// connection fails its Send instead of hanging it.
func dialRetry(addr string) (*gostomp.Conn, net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := gostomp.Connect(nc, gostomp.ConnOpt.Logger(quiet{}), gostomp.ConnOpt.HeartBeat(0, 0),
		gostomp.ConnOpt.RcvReceiptTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nc, nil
}

// count returns how many messages are receipted.
func (l *retryLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// since returns how many messages were receipted after t.
func (l *retryLoad) since(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.acked {
		if at.After(t) {
			n++
		}
	}
	return n
}

// waitFor waits until n messages are receipted.
func (l *retryLoad) waitFor(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages receipted after %v, want %d", l.count(), within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pollUntil polls cond every 20ms until it holds or within passes.
func pollUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestReconnectAfterDatabaseCut: producers with receipts and dedup-ids
// send throughout; the database is cut for 2 s and restored. The broker
// does not exit: it stops acknowledging and listening at once (/readyz
// 503, /status role "reconnecting"), reconnects once the database answers
// and serves again on the same address. Every receipted message is in the
// database, and none is lost.
//
// Two cuts: "reset" (connections close, new ones are reset; the proxy
// keeps its port) and "blackhole" (every byte held, nothing errors: the commit
// deadline, --db-commit-timeout 1s here, is what notices, and connection
// attempts hang until the database answers again).
func TestReconnectAfterDatabaseCut(t *testing.T) {
	for _, how := range []string{"reset", "blackhole"} {
		t.Run(how, func(t *testing.T) { testReconnectAfterCut(t, how) })
	}
}

func testReconnectAfterCut(t *testing.T, how string) {
	const outage = 2 * time.Second
	db := proxiedPostgres(t)
	flags := db.flags
	if how == "blackhole" {
		flags = append(flags, "--db-commit-timeout", "1s")
	}
	b := startAdmin(t, "refbroker", flags...)
	b.waitReady(t, 20*time.Second)
	if s := b.status(t); s.Reconnect == nil || s.Reconnect.State != "serving" || s.Role != "master" {
		t.Fatalf("status before the cut: role %q, reconnect %+v", s.Role, s.Reconnect)
	}
	stop := make(chan struct{})
	l := startRetryLoad(b.addr, 4, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		l.wg.Wait()
	}()
	l.waitFor(t, 300, 20*time.Second)

	cut := time.Now()
	dbtest.Cut(t, db.proxy, how)
	// The next commit fails on its dead connection.
	var st admin.Status
	if !pollUntil(10*time.Second, func() bool {
		st = b.status(t)
		return b.ready() == 503 && st.Role == admin.Reconnecting && !b.stompOpen()
	}) {
		t.Fatalf("not reconnecting 10s after the cut: readyz %d, role %q, STOMP open %v:\n%s",
			b.ready(), st.Role, b.stompOpen(), b.stderr)
	}
	noticedAt := time.Now()
	noticed := noticedAt.Sub(cut)
	atNotice := l.count()
	time.Sleep(time.Until(cut.Add(outage))) // the outage itself, not an assertion
	select {
	case <-b.done:
		t.Fatalf("refbroker exited during the outage: %v\n%s", b.err, b.stderr)
	default:
	}
	st = b.status(t)
	if code := b.ready(); code != 503 || st.Role != admin.Reconnecting || st.Reconnect.LastError == "" {
		t.Fatalf("during the outage: readyz %d, status role %q, reconnect %+v", code, st.Role, st.Reconnect)
	}
	t.Logf("during the outage: %+v", *st.Reconnect)
	// A RECEIPT the broker wrote before it failed may be read a little
	// later; none may come once it had time to arrive.
	if n := l.since(noticedAt.Add(time.Second)); n > 0 {
		t.Fatalf("%d messages receipted while reconnecting", n)
	}

	restored := time.Now()
	dbtest.Restore(t, db.proxy, how)
	readyAt := b.waitReady(t, 20*time.Second)
	st = b.status(t)
	if st.Role != "master" || st.Reconnect == nil || st.Reconnect.State != "serving" || st.Reconnect.Outages != 1 ||
		st.Reconnect.LastOutageMs <= 0 {
		t.Fatalf("status after the outage: role %q, reconnect %+v", st.Role, st.Reconnect)
	}
	if !b.stompOpen() {
		t.Fatal("ready but not listening on its --listen address")
	}
	l.waitFor(t, atNotice+300, 20*time.Second) // it acknowledges again
	close(stop)
	l.wg.Wait()
	select {
	case <-b.done:
		t.Fatalf("refbroker exited: %v\n%s", b.err, b.stderr)
	default:
	}

	// Every receipted message is in the database (none receipted that is
	// not), and comes back from the broker that reconnected.
	stored := db.stored(t)
	var notStored []string
	for body := range l.acked {
		if !stored[body] {
			notStored = append(notStored, body)
		}
	}
	seen := drain(t, b.addr)
	lost, extra, dups := 0, 0, 0
	for body := range l.acked {
		if seen[body] == 0 {
			lost++
		}
	}
	for body, n := range seen {
		if _, ok := l.acked[body]; !ok {
			extra++
		}
		dups += n - 1
	}
	var errs []string
	for e, n := range l.errs {
		errs = append(errs, fmt.Sprintf("%dx %q", n, e))
	}
	sort.Strings(errs)
	t.Logf("cut noticed after %v; database back after %v; ready %v after the restore (outage %v as the broker measured it)",
		noticed.Round(time.Millisecond), outage, readyAt.Sub(restored).Round(time.Millisecond),
		time.Duration(st.Reconnect.LastOutageMs)*time.Millisecond)
	t.Logf("%d receipted, %d sends failed and were retried, %d stored, %d drained: %d lost, %d not in the database, %d unreceipted stored, %d duplicates",
		len(l.acked), l.failed, len(stored), len(seen), lost, len(notStored), extra, dups)
	t.Logf("send errors: %s", strings.Join(errs, "; "))
	if len(notStored) > 0 {
		sort.Strings(notStored)
		t.Fatalf("%d receipted messages are not in the database, e.g. %v", len(notStored), notStored[:min(5, len(notStored))])
	}
	if lost != 0 {
		t.Fatalf("%d of %d receipted messages lost", lost, len(l.acked))
	}
	if dups != 0 {
		t.Errorf("%d duplicates although every retry carried its dedup-id", dups)
	}
	out := b.stderr.String()
	for _, want := range []string{"database connection lost", "database back: outage lasted", "listening on " + b.addr} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.Join(errs, " "), failMessageDB) {
		t.Errorf("no client was told %q", failMessageDB)
	}
}

// servingOn starts refbroker on db with extra flags, waits until it is
// ready and has receipted one message, and returns it with a send of one
// more receipted persistent message on the same connection.
func servingOn(t *testing.T, db *cutDB, extra ...string) (*leased, func() error) {
	t.Helper()
	b := startAdmin(t, "refbroker", append(db.flags, extra...)...)
	b.waitReady(t, 20*time.Second)
	c := dialBroker(t, b.addr)
	send := func() error {
		return c.Send("/queue/crash", "text/plain", []byte("m"), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true"))
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	return b, send
}

// TestReconnectOffOrGivenUp: with --db-reconnect=false a lost database
// fails stop as before, and --db-reconnect-max gives up after that long;
// both exit 1.
func TestReconnectOffOrGivenUp(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		before time.Duration // no exit before this long after the cut
		want   string
	}{
		{"off", []string{"--db-reconnect=false"}, 0, "exiting without retrying"},
		{"max", []string{"--db-reconnect-max", "1500ms"}, 1500 * time.Millisecond, "--db-reconnect-max 1.5s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := proxiedPostgres(t)
			b, send := servingOn(t, db, tt.args...)
			dbtest.Cut(t, db.proxy, "reset")
			cut := time.Now()
			if err := send(); err == nil {
				t.Fatal("a SEND was receipted with the database cut")
			}
			if code := b.exitCode(); code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, b.stderr)
			}
			if d := time.Since(cut); d < tt.before {
				t.Fatalf("exited %v after the cut, before %v", d, tt.before)
			}
			if out := b.stderr.String(); !strings.Contains(out, "FATAL") || !strings.Contains(out, tt.want) {
				t.Fatalf("stderr does not say FATAL ... %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestNonConnectionStoreErrorExits1: a commit that the database refuses
// (a constraint violation) is no lost connection: the broker fails stop
// and exits 1 without reconnecting.
func TestNonConnectionStoreErrorExits1(t *testing.T) {
	db := proxiedPostgres(t)
	b, send := servingOn(t, db)
	raw, err := sql.Open("pgx", db.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(context.Background(),
		"ALTER TABLE lossbench_msgs ADD CONSTRAINT no_more CHECK (seq < 0) NOT VALID"); err != nil {
		t.Fatal(err)
	}
	if err := send(); err == nil {
		t.Fatal("a SEND the database refused was receipted")
	}
	if code := b.exitCode(); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, b.stderr)
	}
	out := b.stderr.String()
	if !strings.Contains(out, "FATAL") || !strings.Contains(out, "check constraint") || strings.Contains(out, "reconnecting") {
		t.Fatalf("stderr does not show a fail-stop on the constraint without reconnecting:\n%s", out)
	}
}
