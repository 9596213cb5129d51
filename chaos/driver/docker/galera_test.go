package docker

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestGaleraCluster: a mariadb database with two replicas runs as a
// three-node Galera cluster, one container in each of sites a, b and c,
// the joiners' state transfers and the group's traffic going through the
// link proxies: cutting site a from b and c takes gal out of the
// cluster, healing brings it back. A row committed through a1's DSN is
// on every node; after gal's kill -9 the DSN writes to gal-b; gal,
// started again, joins the cluster and has that write; Close leaves
// nothing of the run.
func TestGaleraCluster(t *testing.T) {
	cli := engine(t)
	if os.Getenv("LOSSBENCH_GALERA_TESTS") == "" {
		t.Skip("set LOSSBENCH_GALERA_TESTS=1 to start a 3-node Galera cluster in containers (minutes: two state transfers and a rejoin)")
	}
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Links: []scenario.Link{{A: "a", B: "b"}, {A: "a", B: "c"}, {A: "b", B: "c"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "gal"}}},
		Databases: []scenario.Database{{Name: "gal", Site: "a", Kind: scenario.MariaDB,
			Replicas: []scenario.Replica{{Name: "gal-b", Site: "b"}, {Name: "gal-c", Site: "c"}}}}}
	cfg := driver.Config{Topology: topo, Scenario: "galera", Log: t.Logf}
	d := openDriver(t, cfg)
	if err := d.startDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	g := d.galeras["gal"]
	node := func(name string) *sql.DB {
		m := d.dbs[name]
		m.mu.Lock()
		addr := m.addr
		m.mu.Unlock()
		db, err := sql.Open("mysql", dsnAt(scenario.MariaDB, addr, m.name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	size := func(name string) string {
		var k, v string
		if err := node(name).QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'").Scan(&k, &v); err != nil {
			return err.Error()
		}
		return v
	}
	for _, m := range g.members {
		if n := size(m.server.Name); n != "3" {
			t.Fatalf("%s: cluster size %s, want 3", m.server.Name, n)
		}
	}

	// The group's traffic goes through the proxies.
	for _, b := range []string{"b", "c"} {
		if err := d.Cut(ctx, "a", b); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "gal-b's cluster without gal", func() bool { return size("gal-b") == "2" })
	for _, b := range []string{"b", "c"} {
		if err := d.Heal(ctx, "a", b); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "gal back in gal-b's cluster", func() bool { return size("gal-b") == "3" })
	if err := waitSynced(ctx, d.dbs["gal"].addr); err != nil {
		t.Fatal(err)
	}

	// a1's DSN names the three nodes, each through a1's proxy to it,
	// its own site's first.
	dsn := d.nodes["a1"].dsn("gal")
	open, end := strings.Index(dsn, "tcp("), strings.Index(dsn, ")/")
	if open < 0 || end < open || !strings.HasSuffix(dsn, "?wsrep_sync_wait=1") {
		t.Fatalf("a1's DSN %q: want tcp(h1,h2,h3)/db?wsrep_sync_wait=1", dsn)
	}
	var via []*sql.DB
	for i, addr := range strings.Split(dsn[open+4:end], ",") {
		db, err := sql.Open("mysql", dsnAt(scenario.MariaDB, addr, g.members[0].name))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var name string
		if err := db.QueryRowContext(ctx, "SELECT @@wsrep_node_name").Scan(&name); err != nil || name != g.members[i].server.Name {
			t.Fatalf("address %d of a1's DSN (%s) reaches node %q (%v), want %s", i, addr, name, err, g.members[i].server.Name)
		}
		via = append(via, db)
	}
	mustExecCtx(t, via[0], "CREATE TABLE t (id INT PRIMARY KEY)")
	mustExecCtx(t, via[0], "INSERT INTO t VALUES (1)")
	for _, m := range g.members {
		waitUntil(t, "row 1 on "+m.server.Name, func() bool { return count(ctx, node(m.server.Name), 1) == 1 })
	}

	if err := d.KillDB(ctx, "gal"); err != nil {
		t.Fatal(err)
	}
	if d.DatabaseRunning("gal") {
		t.Fatal("gal runs after its kill")
	}
	waitUntil(t, "gal-b's cluster without gal", func() bool { return size("gal-b") == "2" })
	mustExecCtx(t, via[1], "INSERT INTO t VALUES (2)")
	if err := d.RestartDB(ctx, "gal"); err != nil {
		t.Fatal(err)
	}
	if n := size("gal"); n != "3" {
		t.Fatalf("gal after its restart: cluster size %s, want 3 (joined, not a cluster of its own)", n)
	}
	db := node("gal")
	if _, err := db.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1"); err != nil {
		t.Fatal(err)
	}
	if n := count(ctx, db, 2); n != 1 {
		t.Fatalf("row 2, written while gal was down, on the rejoined gal: count %d", n)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, cli, d.cfg.RunID); len(left) > 0 {
		t.Fatalf("left after Close: %v", left)
	}
}

func count(ctx context.Context, db *sql.DB, id int) int {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t WHERE id = ?", id).Scan(&n); err != nil {
		return -1
	}
	return n
}

func mustExecCtx(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
