package driver

import (
	"slices"
	"testing"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestBrokerArgv: refbroker's flags for each database kind, and a command
// broker's placeholders, from one builder every driver uses.
func TestBrokerArgv(t *testing.T) {
	topo := scenario.Topology{Databases: []scenario.Database{
		{Name: "pg", Kind: scenario.Postgres}, {Name: "my", Kind: scenario.MariaDB}, {Name: "lite", Kind: scenario.SQLite}}}
	env := NodeEnv{Bin: "/bin/rb", Listen: "10.0.0.2:61613", Admin: "10.0.0.2:8161", Data: "/data", DSN: "postgres://x",
		Disks: map[string]string{"d1": "/disks/d1"}, Peers: map[string]string{"b1": "10.0.1.2:7000"}}
	for _, tc := range []struct {
		name string
		b    scenario.Broker
		env  NodeEnv
		want []string
	}{
		{"journal", scenario.Broker{Kind: scenario.RefBroker, Store: "journal", Fsync: "batch", Args: []string{"--peer={peer.b1}"}}, env,
			[]string{"/bin/rb", "--listen", "10.0.0.2:61613", "--admin", "10.0.0.2:8161", "--store", "journal", "--data", "/data", "--fsync", "batch", "--peer=10.0.1.2:7000"}},
		{"mirrored journal", scenario.Broker{Kind: scenario.RefBroker, Store: "journal"}, env,
			[]string{"/bin/rb", "--listen", "10.0.0.2:61613", "--admin", "10.0.0.2:8161", "--store", "journal", "--data", "/data", "--data", "/disks/d1/data"}},
		{"postgres", scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "pg"}, env,
			[]string{"/bin/rb", "--listen", "10.0.0.2:61613", "--admin", "10.0.0.2:8161", "--store", "jdbc", "--data", "/data", "--db-driver", "postgres", "--dsn", "postgres://x"}},
		{"mariadb", scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "my"}, env,
			[]string{"/bin/rb", "--listen", "10.0.0.2:61613", "--admin", "10.0.0.2:8161", "--store", "jdbc", "--data", "/data", "--db-driver", "mysql", "--dsn", "postgres://x"}},
		{"sqlite default bin", scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Database: "lite"}, NodeEnv{Listen: "l", Admin: "a", Data: "/d"},
			[]string{"refbroker", "--listen", "l", "--admin", "a", "--store", "jdbc", "--data", "/d", "--db-driver", "sqlite"}},
		{"replicated", scenario.Broker{Kind: scenario.RefBroker, Store: "jdbc", Databases: []string{"pg", "lite", "my"}},
			NodeEnv{Listen: "l", Admin: "a", Data: "/d", DSNs: map[string]string{"pg": "postgres://p", "my": "u@tcp(m)/x"}},
			[]string{"refbroker", "--listen", "l", "--admin", "a", "--store", "jdbc", "--data", "/d",
				"--db-driver", "postgres", "--dsn", "postgres://p", "--db-driver", "sqlite", "--dsn", "lite.db", "--db-driver", "mysql", "--dsn", "u@tcp(m)/x"}},
		{"command", scenario.Broker{Kind: scenario.Command, Database: "pg", Command: []string{"broker", "-l", "{listen}", "-n", "{node}@{site}", "-s", "{dsn}"}, Args: []string{"{data}"}}, env,
			[]string{"broker", "-l", "10.0.0.2:61613", "-n", "a1@a", "-s", "postgres://x", "/data"}},
	} {
		topo := topo
		if tc.name == "mirrored journal" {
			topo.Disks = []scenario.Disk{{Name: "d0", Node: "a1"}, {Name: "d1", Node: "a1", MirrorOf: "d0"}, {Name: "b-d1", Node: "b1", MirrorOf: "d0"}}
		}
		got := BrokerArgv(scenario.Node{Name: "a1", Site: "a", Broker: tc.b}, topo, tc.env)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
