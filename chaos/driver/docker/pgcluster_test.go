package docker

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestReplicatedPostgres: a PostgreSQL database with a sync replica runs
// as two containers, the standby streaming through its link proxy; a row
// committed on the primary survives the primary's kill -9: the HA manager
// promotes the standby, which the node's DSN finds and which has the row;
// the old primary, started again, comes back rebuilt as a synchronous
// standby of the new primary (never as a second primary).
func TestReplicatedPostgres(t *testing.T) {
	engine(t)
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "pg"}}},
		Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres,
			Replicas: []scenario.Replica{{Name: "pg-b", Site: "a", Sync: true}},
			Failover: &scenario.Failover{PromoteAfter: scenario.Duration(time.Second)}}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "pgha", Log: t.Logf})
	if err := d.startDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	cl := d.clusters["pg"]
	db, err := sql.Open("pgx", d.nodes["a1"].dsn("pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := d.KillDB(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "pg-b promoted", func() bool { return cl.ha.Primary() == 1 })
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id = 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the committed row on the promoted pg-b: count %d, %v", n, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("a write on the promoted pg-b: %v", err)
	}
	if err := d.RestartDB(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	in, err := cl.admin(0).InRecovery(ctx)
	if err != nil || !in {
		t.Fatalf("old primary pg after its restart: in recovery %v (%v), want a standby", in, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.admin(1).WaitStandby(wctx, "pg", true); err != nil {
		t.Fatal(err)
	}
	// The rebuilt standby has the new primary's write.
	waitUntil(t, "row 2 on the rebuilt pg", func() bool {
		m := cl.members[0]
		m.mu.Lock()
		dsn := dsnAt(scenario.Postgres, m.addr, m.name)
		m.mu.Unlock()
		odb, err := sql.Open("pgx", dsn)
		if err != nil {
			return false
		}
		defer odb.Close()
		return odb.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id = 2").Scan(&n) == nil && n == 1
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
