package local

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestReplicatedPostgresFailover on real servers (tmpfs): the primary in
// site a and a sync standby in site b streaming through the a<->b proxy;
// a broker's DSN names both. Cutting the a<->b link holds a sync commit.
// The primary hangs (SIGSTOP): the HA manager fences it (kill -9) and
// promotes the standby, which has every committed row; the same DSN then
// writes to it. Restarting the old primary rebuilds it as a synchronous
// standby of the new one, never a primary.
func TestReplicatedPostgresFailover(t *testing.T) {
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		t.Skip(err)
	}
	// On tmpfs where there is one: the test is about failover, not the
	// disk's fsync rate under load.
	d, ctx := startPG(t, scenario.Database{Name: "pg", Site: "a", Kind: scenario.Postgres,
		Replicas: []scenario.Replica{{Name: "pg-b", Site: "b", Sync: true}},
		Failover: &scenario.Failover{PromoteAfter: scenario.Duration(time.Second)}}, onTmpfs(t))
	dsn := d.nodes["a2"].dsn("pg")
	if !strings.Contains(dsn, ",") || !strings.Contains(dsn, "target_session_attrs=read-write") {
		t.Fatalf("a2's DSN %q does not name both servers for writes", dsn)
	}
	pg, pgb := d.dbs.byName["pg"], d.dbs.byName["pg-b"]
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0) // every statement connects anew, as a reconnect does
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	for i := 0; i < 50; i++ {
		mustExec(t, db, "INSERT INTO t VALUES ($1)", i)
	}

	// The standby's link cut: a sync commit waits.
	if err := d.Cut(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = db.ExecContext(qctx, "INSERT INTO t VALUES (500)")
	qcancel()
	if err == nil {
		t.Fatal("a synchronous commit returned with the link to its standby cut")
	}
	if err := d.Heal(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}

	// The primary hangs (SIGSTOP): the HA manager fences it (kill -9)
	// before it promotes, so it can never take a write again.
	if err := srvOf(pg).Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pg-b promoted", func() bool {
		in, err := srvOf(pgb).InRecovery(ctx)
		return err == nil && !in
	})
	if srvOf(pg).Running() {
		t.Fatal("pg-b promoted while the old primary pg still runs (paused): two primaries")
	}
	// The broker's DSN finds the new primary.
	var n int
	waitFor(t, "a write through a2's DSN", func() bool {
		_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (1000)")
		return err == nil
	})
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id < 50").Scan(&n); err != nil || n != 50 {
		t.Fatalf("promoted standby has %d of the 50 committed rows (%v)", n, err)
	}

	// The old primary comes back as a synchronous standby of pg-b.
	if err := d.RestartDB(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	if in, err := srvOf(pg).InRecovery(ctx); err != nil || !in {
		t.Fatalf("restarted old primary: in recovery %v, %v", in, err)
	}
	sts, err := srvOf(pgb).Standbys(ctx)
	if err != nil || len(sts) != 1 || sts[0].App != "pg" || sts[0].Sync != "sync" {
		t.Fatalf("pg-b's standbys %+v (%v), want pg, sync", sts, err)
	}
	mustExec(t, db, "INSERT INTO t VALUES (1001)")
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id >= 1000").Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows written after the failover (%v), want 2", n, err)
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// waitFor polls cond every 100 ms for up to two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// onTmpfs puts the driver's folder on /dev/shm where there is one.
func onTmpfs(t *testing.T) func(*Options) {
	return func(o *Options) {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			dir, err := os.MkdirTemp("/dev/shm", "lossbench-cluster-")
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o755)
			t.Cleanup(func() { os.RemoveAll(dir) })
			o.Dir = dir
		}
	}
}

// startPG starts a driver whose topology has sites a, b and clients, the
// database db (named pg) and two nodes in site a: a1, a memory broker
// that is started (so the databases start), and a2, never started,
// whose DSN is what a jdbc broker on pg would get. The context ends with
// the test (at most 5 min).
func startPG(t *testing.T, db scenario.Database, set func(*Options)) (*Driver, context.Context) {
	t.Helper()
	topo := scenario.Topology{
		Sites: []scenario.Site{{Name: "a"}, {Name: "b"}, {Name: "clients"}},
		Links: []scenario.Link{{A: "clients", B: "a"}, {A: "a", B: "b"}},
		Nodes: []scenario.Node{
			{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "memory"}},
			{Name: "a2", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "pg"}},
		},
		Databases: []scenario.Database{db},
	}
	d := newDriverWith(t, topo, set)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	return d, ctx
}
