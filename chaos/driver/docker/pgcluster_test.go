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
	testReplicatedPostgres(t, "")
}

// TestReplicatedPostgresNamedImage: the same from a named image with the
// official postgres image's interface (--database-image postgres=NAME):
// an entrypoint that initialises PGDATA as root and drops to the
// postgres user, whose pg_hba.conf lets replication in from the
// loopback only, and pg_basebackup on its PATH.
func TestReplicatedPostgresNamedImage(t *testing.T) {
	cli := engine(t)
	testReplicatedPostgres(t, officialPostgresImage(t, cli).Ref)
}

// testReplicatedPostgres runs TestReplicatedPostgres's case with the
// databases from image ("": the one made here).
func testReplicatedPostgres(t *testing.T, image string) {
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "pg"}}},
		Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres,
			Replicas: []scenario.Replica{{Name: "pg-b", Site: "a", Sync: true}},
			Failover: &scenario.Failover{PromoteAfter: scenario.Duration(time.Second)}}}}
	cfg := driver.Config{Topology: topo, Scenario: "pgha", Log: t.Logf}
	if image != "" {
		cfg.DatabaseImages = map[string]string{string(scenario.Postgres): image}
	}
	d := openDriver(t, cfg)
	if err := d.startDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	cl := d.clusters["pg"]
	for _, m := range cl.members {
		if image != "" && m.img.Ref != image {
			t.Fatalf("%s runs %s, want %s", m.server.Name, m.img.Ref, image)
		}
	}
	// pg-b streams synchronously from pg before anything is written.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cl.admin(0).WaitStandby(wctx, "pg-b", true); err != nil {
		t.Fatal(err)
	}
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
	wctx, cancel = context.WithTimeout(ctx, time.Minute)
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

// TestPGTools: pg_basebackup is beside the entrypoint's postgres in the
// image made here, run as its user; in an image with the official
// interface it is on the PATH, run as postgres, not as root.
func TestPGTools(t *testing.T) {
	for _, c := range []struct {
		ep               []string
		user, bin, runAs string
	}{
		{[]string{"/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/data"}, "999:999", "/usr/lib/postgresql/15/bin/", "999:999"},
		{[]string{"docker-entrypoint.sh"}, "", "", "postgres"},
		{[]string{"docker-entrypoint.sh"}, "root", "", "postgres"},
		{[]string{"docker-entrypoint.sh"}, "0:0", "", "postgres"},
		{nil, "postgres", "", "postgres"},
	} {
		if bin, runAs := pgTools(c.ep, c.user); bin != c.bin || runAs != c.runAs {
			t.Errorf("pgTools(%q, %q) = %q, %q; want %q, %q", c.ep, c.user, bin, runAs, c.bin, c.runAs)
		}
	}
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
