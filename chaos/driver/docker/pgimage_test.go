package docker

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestPostgresImageBaseBackup: our PostgreSQL image can make a standby
// of a server in another container: its pg_basebackup (from the client
// package) takes a base backup, with the WAL it needs, of a running
// server over the site network as a replication connection, which the
// image's pg_hba.conf lets in.
func TestPostgresImageBaseBackup(t *testing.T) {
	cli := engine(t)
	ctx := t.Context()
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes:     []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "pg"}}},
		Databases: []scenario.Database{{Name: "pg", Site: "a", Kind: scenario.Postgres}}}
	d := openDriver(t, driver.Config{Topology: topo, Scenario: "pgbase", Log: t.Logf})
	if err := d.startDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	db := d.dbs["pg"]
	if !strings.HasPrefix(db.img.Ref, PostgresRepo+":") {
		t.Skipf("skipping: pg runs %s, not an image made here", db.img.Ref)
	}
	res, err := cli.ContainerInspect(ctx, db.id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := res.Container.NetworkSettings.Networks[db.site.netName].IPAddress.String()
	bin := strings.TrimSuffix(res.Container.Config.Entrypoint[0], "postgres")
	// A tar of the base backup on standard output: no folder needed.
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Image: db.img.Ref, Name: d.name("pgbase"),
		Config: &container.Config{Entrypoint: []string{bin + "pg_basebackup", "-h", ip, "-U", "postgres",
			"-D", "-", "-F", "t", "-X", "fetch", "--checkpoint=fast"}, Labels: d.labels("database", "a", "pgbase")},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{db.site.netName: {}}}})
	if err != nil {
		t.Fatal(err)
	}
	wait := cli.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		t.Fatal(err)
	}
	out := containerLogs(ctx, cli, c.ID, "all")
	if code != 0 {
		t.Fatalf("pg_basebackup in %s exited %d:\n%.2000s", db.img.Ref, code, out)
	}
	// The tar holds the data folder: its PG_VERSION and the control file.
	for _, f := range []string{"PG_VERSION", "global/pg_control"} {
		if !strings.Contains(out, f) {
			t.Fatalf("the base backup (%d bytes) has no %s", len(out), f)
		}
	}
}
