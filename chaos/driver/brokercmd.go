package driver

import (
	"path"
	"slices"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// NodeEnv is where one node's broker finds what it needs, as the driver
// running it sees it: its addresses and data folder inside the node (a
// process's host addresses, or a container's), its database's DSN, and
// the addresses of its disks and peers. It fills a broker's command line
// (BrokerArgv) and its placeholders (Vars).
type NodeEnv struct {
	// Bin is the refbroker executable; "" means "refbroker".
	Bin string
	// Listen and Admin are the broker's STOMP and admin HTTP addresses.
	Listen, Admin string
	// Data is the data folder ({data}, --data).
	Data string
	// DSN is the node's database's data source name ({dsn}, --dsn), as
	// the broker reaches it; "" without a server database.
	DSN string
	// DSNs are the data source names of every server database the node
	// uses, by database name (Broker.Databases: one --dsn each).
	DSNs map[string]string
	// Disks are the mount points of the topology's disks by name (a
	// refbroker's extra --data folders); Peers the addresses of the other
	// nodes this node reaches by name ({peer.NAME}).
	Disks, Peers map[string]string
	// Repl is the node's replication address ({repl}, refbroker
	// --replication-listen); ReplPeers the other nodes' replication
	// addresses as this node reaches them ({repl.NAME}), through the link
	// proxies. Empty where the driver has none.
	Repl      string
	ReplPeers map[string]string
}

// Vars are the placeholder values of node n in env: {listen}, {admin},
// {data}, {node}, {site}, {dsn}, {peer.NAME}, {repl}, {repl.NAME}: the
// placeholders scenario validation accepts.
func Vars(n scenario.Node, env NodeEnv) map[string]string {
	v := map[string]string{
		"listen": env.Listen, "admin": env.Admin, "data": env.Data,
		"node": n.Name, "site": n.Site, "dsn": env.DSN, "repl": env.Repl,
	}
	for name, a := range env.ReplPeers {
		v["repl."+name] = a
	}
	for name, a := range env.Peers {
		v["peer."+name] = a
	}
	return v
}

// BrokerArgv is node n's broker command line in env: a command broker's
// own argv with its placeholders filled, refbroker's witness (args
// starting with "witness": refbroker witness --listen --admin, then the
// other args), or refbroker's flags (--listen,
// --admin, --store, --data, --fsync, the database's --db-driver and
// --dsn) followed by the scenario's extra arguments. Every driver builds
// its command lines here, so a scenario means the same on each.
func BrokerArgv(n scenario.Node, topo scenario.Topology, env NodeEnv) []string {
	b := n.Broker
	vars := Vars(n, env)
	if b.Kind == scenario.Command {
		return b.Argv(vars)
	}
	bin := env.Bin
	if bin == "" {
		bin = "refbroker"
	}
	if args := b.Argv(vars); len(args) > 0 && args[0] == "witness" {
		// The witness of replicated master/slave (refbroker witness),
		// on the node's addresses; no store.
		return append([]string{bin, "witness", "--listen", env.Listen, "--admin", env.Admin}, args[1:]...)
	}
	argv := []string{bin, "--listen", env.Listen, "--admin", env.Admin}
	if b.Store != "" {
		argv = append(argv, "--store", b.Store)
	}
	argv = append(argv, "--data", env.Data)
	argv = append(argv, mirrorArgs(n, topo, env)...)
	if b.Fsync != "" {
		argv = append(argv, "--fsync", b.Fsync)
	}
	argv = append(argv, dbArgs(n, topo, env)...)
	return append(argv, b.Argv(vars)...)
}

// mirrorArgs are one more --data per disk of node n that mirrors another
// (scenario.Disk.MirrorOf): refbroker keeps a copy of its journal on each
// (the mirrored journal), in its data folder there.
func mirrorArgs(n scenario.Node, topo scenario.Topology, env NodeEnv) []string {
	var args []string
	for _, d := range topo.Disks {
		if d.MirrorOf == "" || !slices.Contains(d.Attached(), n.Name) {
			continue
		}
		if p, ok := env.Disks[d.Name]; ok {
			args = append(args, "--data", path.Join(p, "data"))
		}
	}
	return args
}

// dbArgs are refbroker's database flags for node n: --db-driver and --dsn
// for a server database, --db-driver sqlite (a file under --data) for a
// sqlite one, none without a database. With Broker.Databases, a
// --db-driver and a --dsn for each (a sqlite one's --dsn is the file
// <name>.db, under --data).
func dbArgs(n scenario.Node, topo scenario.Topology, env NodeEnv) []string {
	names := n.Broker.DatabaseNames()
	var argv []string
	for _, name := range names {
		dsn := env.DSNs[name]
		if dsn == "" && len(names) == 1 {
			dsn = env.DSN
		}
		for _, spec := range topo.Databases {
			if spec.Name != name {
				continue
			}
			switch spec.Kind {
			case scenario.SQLite:
				argv = append(argv, "--db-driver", "sqlite")
				if len(names) > 1 {
					argv = append(argv, "--dsn", name+".db")
				}
			case scenario.Postgres:
				argv = append(argv, "--db-driver", "postgres", "--dsn", dsn)
			case scenario.MariaDB:
				argv = append(argv, "--db-driver", "mysql", "--dsn", dsn)
			}
		}
	}
	return argv
}
