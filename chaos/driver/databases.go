package driver

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// DatabaseName is the database every driver creates on a server for the
// run whose folder is runDir: the folder's name (the scenario's), in the
// characters SQL names allow, at most 60 of them.
func DatabaseName(runDir string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(filepath.Base(runDir)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "lb_" + s
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// Databases is a driver that runs the topology's database servers and can
// fault them. Names are the topology's database names.
type Databases interface {
	// KillDB crashes database server db (SIGKILL): what it committed
	// survives, connections break.
	KillDB(ctx context.Context, db string) error
	// RestartDB starts a killed db again on its data and waits until it
	// accepts connections (after crash recovery); a running db is left
	// as it is.
	RestartDB(ctx context.Context, db string) error
}

// DatabaseWiper is a Databases driver that can destroy a database
// server's data (db-data-lost).
type DatabaseWiper interface {
	// WipeDB crashes database server db (SIGKILL) and destroys its data
	// directory, as the loss of its disk would; RestartDB then starts it
	// on a new, empty one, with the run's database created again.
	WipeDB(ctx context.Context, db string) error
}

// WipedIn returns the database of topo that server, a name db-data-lost
// targets, belongs to (a database's own name or one of its replicas'),
// and whether there is one.
func WipedIn(topo scenario.Topology, server string) (scenario.Database, bool) {
	for _, db := range topo.Databases {
		for _, s := range db.Servers() {
			if s.Name == server {
				return db, true
			}
		}
	}
	return scenario.Database{}, false
}
