package docker

import (
	"database/sql"
	"strconv"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestActiveMQJDBC: an activemq node on store jdbc runs in its container
// with its PostgreSQL database a container of the topology, reached
// through the node's proxy: a persistent SEND's RECEIPT comes after its
// row is in the database (ACTIVEMQ_MSGS has it while the broker is
// down; the non-persistent one beside it is not there), and after kill
// -9 and a restart the broker delivers it again from there.
func TestActiveMQJDBC(t *testing.T) {
	cli := engine(t)
	if err := peers.ActiveMQJDBCAvailable(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	run := "amqjdbc-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes:     []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.ActiveMQ, Store: scenario.ActiveMQJDBC, Database: "pg"}}},
		Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres}}}
	d, addr := startPeerNode(t, topo, run, ActiveMQRepo)
	sendKeptLost(t, addr)
	if err := d.Kill(t.Context(), "a1"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", d.nodes["a1"].dsn("pg"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	var container sql.NullString
	if err := db.QueryRowContext(t.Context(), "SELECT count(*), min(container) FROM activemq_msgs").Scan(&rows, &container); err != nil {
		t.Fatalf("the broker's table in its database: %v", err)
	}
	if rows != 1 || container.String != "queue://lossbench-kept" {
		t.Fatalf("activemq_msgs holds %d rows (first container %q), want the persistent message's only", rows, container.String)
	}
	if err := d.Start(t.Context(), "a1"); err != nil {
		t.Fatal(err)
	}
	wantKeptOnly(t, addr)
	closeClean(t, cli, d, run)
}
