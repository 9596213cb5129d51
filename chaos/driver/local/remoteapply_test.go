package local

import (
	"database/sql"
	"testing"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestRemoteApplyStandby on real servers: with sync: remote_apply the
// primary commits with synchronous_commit=remote_apply, and every row a
// COMMIT returned for is already visible on the standby (with sync: true
// the standby has flushed it, and may not have replayed it yet).
func TestRemoteApplyStandby(t *testing.T) {
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		t.Skip(err)
	}
	d, ctx := startPG(t, scenario.Database{Name: "pg", Site: "a", Kind: scenario.Postgres,
		Replicas: []scenario.Replica{{Name: "pg-b", Site: "b", Sync: true, Apply: true}}}, onTmpfs(t))
	primary, err := sql.Open("pgx", d.nodes["a2"].dsn("pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	var mode string
	if err := primary.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&mode); err != nil || mode != "remote_apply" {
		t.Fatalf("primary's synchronous_commit %q (%v), want remote_apply", mode, err)
	}
	pgb := d.dbs.byName["pg-b"]
	standby, err := sql.Open("pgx", srvOf(pgb).DSN(pgb.name))
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close()
	mustExec(t, primary, "CREATE TABLE t (id INT PRIMARY KEY)")
	for i := 0; i < 200; i++ {
		mustExec(t, primary, "INSERT INTO t VALUES ($1)", i)
		var n int
		if err := standby.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != i+1 {
			t.Fatalf("after COMMIT %d the standby shows %d rows (%v), want %d", i, n, err, i+1)
		}
	}
}
