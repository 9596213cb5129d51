package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/dbserver"
)

// TestLeaseMasterCutFromDatabase: each broker reaches the database through
// its own TCP proxy (toxiproxy); the master's proxy is cut mid-load, either
// with resets (the proxy stops: connections close, new ones are refused)
// or as a black hole (bytes are held forever, nothing errors: only the
// lease's own clock can tell the master to stop). The
// master must stop acknowledging before its lease can expire and fail stop
// (exit 1); the standby takes over only after that; the last RECEIPT from
// the old master precedes the new master's first moment of service, so two
// brokers never acknowledge at once; every receipted message is on the new
// master.
func TestLeaseMasterCutFromDatabase(t *testing.T) {
	for _, c := range []struct{ kind, cut string }{
		{"postgres", "reset"}, {"mariadb", "reset"},
	} {
		kind := c.kind
		t.Run(kind+"/"+c.cut, func(t *testing.T) {
			k := dbserver.Postgres
			if kind == "mariadb" {
				k = dbserver.MariaDB
			}
			srv := dbs.Server(t, k)
			opts := dbs.Fresh(t, kind)
			tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
			via := func(name string) (*toxiproxy.Proxy, []string) {
				p := toxiproxy.NewProxy(tp, name, freeAddr(t), srv.Addr())
				if err := p.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(p.Stop)
				dsn := strings.Replace(opts.DSN, srv.Addr(), p.Listen, 1)
				if dsn == opts.DSN {
					t.Fatalf("DSN %q does not name the server's address %s", opts.DSN, srv.Addr())
				}
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
					cutDatabase(t, pa, c.cut)
					cut = time.Now()
				}
			})

			if code := a.exitCode(); code != 1 {
				t.Fatalf("master cut from its database: exit %d, want 1 (fail-stop):\n%s", code, a.stderr)
			}
			readyAt := b.waitReady(t, leaseTTL+10*time.Second)
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

// cutDatabase cuts a proxied path: "reset" stops the proxy (its
// connections close, new ones are refused); "blackhole" holds every byte
// both ways on the open connections and on new ones, with no error.
func cutDatabase(t *testing.T, p *toxiproxy.Proxy, how string) {
	t.Helper()
	switch how {
	case "reset":
		p.Stop()
	case "blackhole":
		for _, stream := range []string{"upstream", "downstream"} {
			js := `{"name":"blackhole-` + stream + `","type":"timeout","stream":"` + stream + `","attributes":{"timeout":0}}`
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
				t.Errorf("blackhole %s: %v", stream, err)
			}
		}
	default:
		t.Fatalf("unknown cut %q", how)
	}
}
