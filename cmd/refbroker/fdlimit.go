package main

import (
	"fmt"

	"github.com/lossbench/lossbench/broker/config"
)

// fdReserve is how many file descriptors are kept out of the clients'
// reach: for the store (journal segments, database connections, SQLite's
// files), the admin endpoint (adminMaxConns of them), the listeners and the
// runtime. Clients get what is left of RLIMIT_NOFILE, so a flood of
// connections is refused before a segment roll can fail with "too many
// open files" and fail-stop the broker.
const fdReserve = 256

// adminMaxConns bounds the admin endpoint's open connections; past it a
// connection is closed at once.
const adminMaxConns = 32

// fitConnections raises the soft RLIMIT_NOFILE to the hard limit and
// lowers cfg.MaxConnections to fit below it with fdReserve to spare. It
// fails when the limit leaves no descriptor for a client.
func fitConnections(cfg *config.Config, logf func(string, ...any)) error {
	nofile, err := raiseNoFile()
	if err != nil {
		return fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if nofile == 0 { // unknown or unlimited
		return nil
	}
	room := int64(nofile) - fdReserve
	if room < 1 {
		return fmt.Errorf("RLIMIT_NOFILE is %d, not above the %d descriptors reserved for the store and admin: no room for clients; raise it (ulimit -n)",
			nofile, fdReserve)
	}
	if int64(cfg.MaxConnections) > room {
		logf("max-connections %d lowered to %d: RLIMIT_NOFILE %d less %d descriptors reserved for the store and admin",
			cfg.MaxConnections, room, nofile, fdReserve)
		cfg.MaxConnections = int(room)
	}
	return nil
}
