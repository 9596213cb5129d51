package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// TestLeaseMasterCutFromDatabase: each broker reaches the database through
// its own TCP proxy (toxiproxy); the master's proxy is cut mid-load, either
// with resets (connections close, new ones are reset)
// or as a black hole (bytes are held forever, nothing errors: only the
// lease's own clock can tell the master to stop). The
// master must stop acknowledging before its lease can expire and fail stop
// (exit 1); the standby takes over only after that; the last RECEIPT from
// the old master precedes the new master's first moment of service, so two
// brokers never acknowledge at once; every receipted message is on the new
// master.
func TestLeaseMasterCutFromDatabase(t *testing.T) {
	for _, c := range []struct{ kind, cut string }{
		{"postgres", "reset"}, {"postgres", "blackhole"}, {"mariadb", "reset"}, {"mariadb", "blackhole"},
	} {
		kind := c.kind
		t.Run(kind+"/"+c.cut, func(t *testing.T) {
			k := dbserver.Postgres
			if kind == "mariadb" {
				k = dbserver.MariaDB
			}
			srv := dbs.Server(t, k)
			opts := dbs.Fresh(t, kind)
			via := func(name string) (*dbtest.Link, []string) {
				p, dsn := dbtest.Proxy(t, srv, opts.DSN, name)
				return p, []string{"--store", "jdbc", "--db-driver", opts.Driver, "--dsn", dsn, "--data", t.TempDir()}
			}
			pa, dbA := via("broker-a->db")
			_, dbB := via("broker-b->db")
			a := startLeased(t, "broker-a", dbA)
			a.waitReady(t, 20*time.Second)
			b := startLeased(t, "broker-b", dbB)
			time.Sleep(500 * time.Millisecond)
			if code := b.ready(); code != 503 {
				t.Fatalf("standby readyz %d, want 503", code)
			}

			const cutAt = 300
			var (
				mu          sync.Mutex
				cut         time.Time
				lastReceipt time.Time
				afterCut    int // receipts that arrived after the cut
			)
			// The producers stop when the old master fails their sends.
			got := load(t, a.addr, 4, nil, func(n int) {
				mu.Lock()
				defer mu.Unlock()
				lastReceipt = time.Now()
				if !cut.IsZero() {
					afterCut++
				}
				if n >= cutAt && cut.IsZero() {
					dbtest.Cut(t, pa, c.cut)
					cut = time.Now()
				}
			})

			// The standby first (the old master may still be shutting
			// down, acknowledging nothing), then the old master's exit.
			readyAt := b.waitReady(t, leaseTTL+10*time.Second)
			if code := a.exitCode(); code != 1 {
				t.Fatalf("master cut from its database: exit %d, want 1 (fail-stop):\n%s", code, a.stderr)
			}
			mu.Lock()
			defer mu.Unlock()
			if cut.IsZero() {
				t.Fatalf("only %d receipted; the database was never cut", len(got))
			}
			t.Logf("%s: cut after %d receipts; %d receipts in flight answered after the cut; last receipt from the old master at cut%+v; standby ready %v after the cut (ttl %v)",
				kind, cutAt, afterCut, lastReceipt.Sub(cut).Round(time.Millisecond), readyAt.Sub(cut).Round(time.Millisecond), leaseTTL)
			if !lastReceipt.Before(readyAt) {
				t.Fatalf("two masters: the old master receipted at %v, the standby was ready at %v", lastReceipt, readyAt)
			}
			// Receipts after the cut can only be commits that finished as it
			// happened; the old master must not go on acknowledging.
			if lastReceipt.Sub(cut) > leaseTTL/2 {
				t.Fatalf("the old master receipted %v after losing its database", lastReceipt.Sub(cut))
			}
			out := a.stderr.String()
			if !strings.Contains(out, "FATAL") {
				t.Fatalf("the old master does not say why it stopped:\n%s", out)
			}
			seen := drain(t, b.addr)
			lost := 0
			for body := range got {
				if seen[body] == 0 {
					lost++
				}
			}
			t.Logf("%s: %d receipted, %d on the new master, %d lost", kind, len(got), len(seen), lost)
			if lost != 0 {
				t.Fatalf("%d of %d receipted messages lost", lost, len(got))
			}
		})
	}
}
