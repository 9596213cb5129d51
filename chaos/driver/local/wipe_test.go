package local

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/driver"

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

// TestWipeReplicatedRefusedAtOpen: a db-data-lost on a server of a
// replicated PostgreSQL database is refused when the driver opens
// (ErrUnsupported naming the server), not when the fault fires mid-run.
func TestWipeReplicatedRefusedAtOpen(t *testing.T) {
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres, Replicas: []scenario.Replica{{Name: "pg-b", Site: "a", Sync: true}}}}}
	d, err := Open(t.Context(), driver.Config{Topology: topo, Dir: t.TempDir(), WipeDatabases: []string{"pg-b"}})
	if d != nil {
		d.Close()
	}
	if d != nil || !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), "pg-b") {
		t.Fatalf("Open = %v, %v; want nil and an ErrUnsupported naming pg-b", d, err)
	}
}
