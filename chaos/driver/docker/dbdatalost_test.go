package docker

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/fault"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestDatabaseDataLost: db-data-lost on a database container. Rows
// committed through the node's proxy are gone with the data: after the
// fault the server is down, after its recovery it is up again as a new,
// empty server (the run's database there again, without a table), which
// the same DSN reaches and takes writes. On each kind whose image this
// machine makes, and on PostgreSQL from a named image with the official
// image's interface (its entrypoint initialises the empty volume).
func TestDatabaseDataLost(t *testing.T) {
	cli := engine(t)
	for _, c := range []struct {
		name string
		kind scenario.DatabaseKind
	}{{"postgres", scenario.Postgres}, {"mariadb", scenario.MariaDB}, {"postgres-official", scenario.Postgres}} {
		t.Run(c.name, func(t *testing.T) {
			var images map[string]string
			if c.name == "postgres-official" {
				images = map[string]string{string(scenario.Postgres): officialPostgresImage(t, cli).Ref}
			} else if _, err := DatabaseImage(t.Context(), cli, c.kind); err != nil {
				t.Skipf("skipping: %v", err)
			}
			testDatabaseDataLost(t, c.kind, images)
		})
	}
}

func testDatabaseDataLost(t *testing.T, kind scenario.DatabaseKind, images map[string]string) {
	cli := engine(t)
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes:     []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "db"}}},
		Databases: []scenario.Database{{Name: "db", Site: "a", Kind: kind}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "dbdatalost-" + string(kind), DatabaseImages: images,
		Needs: []string{driver.NeedDatabaseWipe}, Log: t.Logf})
	if err := d.startDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	if want := images[string(kind)]; want != "" && d.dbs["db"].img.Ref != want {
		t.Fatalf("db runs %s, want %s", d.dbs["db"].img.Ref, want)
	}
	driverName, tables := "pgx", "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
	if kind == scenario.MariaDB {
		driverName, tables = "mysql", "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
	}
	dsn := d.nodes["a1"].dsn("db")
	open := func() *sql.DB {
		db, err := sql.Open(driverName, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	count := func(db *sql.DB, q string) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	before := open()
	for _, q := range []string{"CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2), (3)"} {
		if _, err := before.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if n := count(before, "SELECT count(*) FROM t"); n != 3 {
		t.Fatalf("%d rows committed, want 3", n)
	}
	oldID := d.dbs["db"].cid()

	f := &fault.DBDataLost{DB: "db"}
	if err := f.Inject(ctx, d); err != nil {
		t.Fatal(err)
	}
	if d.DatabaseRunning("db") {
		t.Fatal("db runs after db-data-lost")
	}
	if id := d.dbs["db"].cid(); id == "" || id == oldID {
		t.Fatalf("db's container after db-data-lost: %q, want a new one (was %.12s)", id, oldID)
	}
	if err := f.Recover(ctx, d); err != nil {
		t.Fatal(err)
	}
	if !d.DatabaseRunning("db") {
		t.Fatal("db does not run after its recovery")
	}

	after := open()
	var n int
	err := after.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n)
	if err == nil || !(strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "doesn't exist")) {
		t.Fatalf("the committed table after db-data-lost: %d rows, %v; want it gone", n, err)
	}
	if n := count(after, tables); n != 0 {
		t.Fatalf("the run's database has %d tables after db-data-lost, want a new empty one", n)
	}
	for _, q := range []string{"CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (4)"} {
		if _, err := after.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s on the new server: %v", q, err)
		}
	}
	if n := count(after, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("%d rows on the new server, want 1", n)
	}

	run := d.cfg.RunID
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(d.cfg.Dir, "logs", "db-db.log"))
	if err != nil || !strings.Contains(string(log), "removed: its data lost (db-data-lost)") {
		t.Errorf("db's log keeps no trace of its removed container (%v):\n%.2000s", err, log)
	}
	if left := leftovers(t, cli, run); len(left) > 0 {
		t.Errorf("left after Close: %v", left)
	}
}

// TestDatabaseDataLostReplicated: db-data-lost on a server of a
// replicated PostgreSQL database is refused as unsupported, as on the
// local driver, before anything is done to it.
func TestDatabaseDataLostReplicated(t *testing.T) {
	engine(t)
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "pg"}}},
		Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres,
			Replicas: []scenario.Replica{{Name: "pg-b", Site: "a", Sync: true}}}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "dbdatalost-ha", Needs: []string{driver.NeedDatabaseWipe}})
	for _, name := range []string{"pg", "pg-b"} {
		if err := d.WipeDB(t.Context(), name); !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), "replicated") {
			t.Errorf("WipeDB(%s) = %v, want ErrUnsupported naming a replicated server", name, err)
		}
	}
}
