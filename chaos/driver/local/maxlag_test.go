package local

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestFailoverMaxLag on real servers: an asynchronous standby cut off
// while the primary writes falls behind by more than the failover's
// max_lag; the primary hangs (SIGSTOP) past promote_after. The HA
// manager refuses to promote the standby (it says why), leaves the old
// primary unfenced, and once the primary is resumed every row it
// committed is there and it takes writes again.
func TestFailoverMaxLag(t *testing.T) {
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		t.Skip(err)
	}
	var (
		mu      sync.Mutex
		refused bool
	)
	d, ctx := startPG(t, scenario.Database{Name: "pg", Site: "a", Kind: scenario.Postgres,
		Replicas: []scenario.Replica{{Name: "pg-b", Site: "b"}},
		Failover: &scenario.Failover{PromoteAfter: scenario.Duration(time.Second), MaxLag: 64 << 10}},
		func(o *Options) {
			onTmpfs(t)(o)
			o.Log = func(f string, a ...any) {
				msg := fmt.Sprintf(f, a...)
				t.Log(msg)
				if strings.Contains(msg, "within max_lag") {
					mu.Lock()
					refused = true
					mu.Unlock()
				}
			}
		})
	db, err := sql.Open("pgx", d.nodes["a2"].dsn("pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, pad TEXT)")
	if err := d.Cut(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	// About 1 MB of WAL the standby never gets, well past 64 KiB.
	for i := 0; i < 500; i++ {
		mustExec(t, db, "INSERT INTO t VALUES ($1, repeat('x', 2000))", i)
	}
	pg, pgb := d.dbs.byName["pg"], d.dbs.byName["pg-b"]
	// Let the manager see the primary's position after those writes.
	waitFor(t, "the HA manager to record the primary's position", func() bool {
		pos, err := srvOf(pg).WALPosition(ctx)
		return err == nil && d.dbs.clusters["pg"].ha.LastPos() >= pos
	})
	if err := srvOf(pg).Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the HA manager to refuse the lagging standby", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return refused
	})
	if in, err := srvOf(pgb).InRecovery(ctx); err != nil || !in {
		t.Fatalf("pg-b in recovery %v (%v): promoted although past max_lag", in, err)
	}
	if !srvOf(pg).Running() {
		t.Fatal("the old primary was fenced although nothing was promoted")
	}
	if err := srvOf(pg).Resume(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "INSERT INTO t VALUES (1000, '')")
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 501 {
		t.Fatalf("the primary holds %d rows (%v), want 501", n, err)
	}
}
