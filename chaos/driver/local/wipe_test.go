package local

import (
	"database/sql"
	"testing"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestWipeDB on a real PostgreSQL: a committed row is gone after WipeDB
// and RestartDB, and the node's DSN reaches the run's database again,
// empty.
func TestWipeDB(t *testing.T) {
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		t.Skip(err)
	}
	d, ctx := startPG(t, scenario.Database{Name: "pg", Site: "a", Kind: scenario.Postgres}, func(*Options) {})
	db, err := sql.Open("pgx", d.nodes["a2"].dsn("pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	if err := d.WipeDB(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	if d.DatabaseRunning("pg") {
		t.Fatal("pg runs after WipeDB")
	}
	if err := d.RestartDB(ctx, "pg"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err == nil {
		t.Fatalf("table t holds %d rows after its server's data was destroyed", n)
	}
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)") // the run's database is there, empty
}
