package driver

import (
	"context"
	"slices"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Config is everything a driver is told about one scenario's run. A
// driver learns nothing else: it never reads the runner's files back.
type Config struct {
	// Topology is what to run.
	Topology scenario.Topology
	// RunID and Scenario name the run and the scenario (labels, logs).
	RunID, Scenario string
	// Dir is the scenario's run folder: node logs go to Dir/logs.
	Dir string
	// StateDir is shared by every run (the --out folder): a driver keeps
	// there what the next run needs to remove the left-overs of one that
	// was killed.
	StateDir string
	// BrokerBin is the refbroker executable for nodes of kind refbroker.
	BrokerBin string
	// BrokerImage names the container image of refbroker nodes on a
	// container driver (lossbench run --refbroker-image); "" means the
	// image built from this source tree. It must be on the engine
	// already: nothing is pulled.
	BrokerImage string
	// DatabaseImages names, by database kind ("postgres", "mariadb"), the
	// container image a container driver runs a server database from
	// (lossbench run --postgres-image, --mariadb-image); a kind missing
	// means the image made from this machine's Debian packages. It must
	// be on the engine already: nothing is pulled.
	DatabaseImages map[string]string
	// PeerImages names, by broker kind ("rabbitmq", "activemq"), the image
	// a container driver runs that kind's nodes from (lossbench run
	// --rabbitmq-image, --activemq-image); a kind missing means the image made here. A
	// scenario node's image: comes first. It must be on the engine
	// already and lay the server out as the image made here does.
	PeerImages map[string]string
	// ClientSite is the site the clients run in; "" means outside every
	// site: they reach every node.
	ClientSite string
	// PowerCutNodes are the nodes a power-cut fault may hit: a driver
	// prepares their disks so that PowerCut drops what was never synced.
	PowerCutNodes []string
	// FaultFSNodes are the nodes a disk-error or disk-stall fault (or a
	// torn power-cut) may hit: a driver that implements DiskFaulter serves
	// their data directory through its fault-injecting filesystem.
	FaultFSNodes []string
	// WipeDatabases are the database servers a db-data-lost fault may
	// hit: a driver that cannot destroy one's data refuses the run at
	// Open (ErrUnsupported), not in the middle of it.
	WipeDatabases []string
	// Writeback is the scenario's writeback model of its fault-injecting
	// filesystem (scenario.WritebackHost or WritebackNone; "" is host).
	Writeback string
	// Needs are the optional interfaces the scenario cannot run without
	// (NeedExitStatus, NeedRestartArgs, NeedDatabaseWipe): a driver that lacks one (Unmet)
	// refuses the run at Open with ErrUnsupported, so --driver auto
	// picks one that has it.
	Needs []string
	// Log, if set, gets one line per action (start, kill, cut...).
	Log func(format string, args ...any)
}

// What a scenario may need of a driver (Config.Needs).
const (
	// NeedExitStatus: the scenario expects nodes' exit statuses
	// (expectations: exit), so the driver must report every process end
	// (ExitReporter).
	NeedExitStatus = "exit-status"
	// NeedRestartArgs: the recovery restarts a node with extra arguments
	// (recovery: restart_args), so the driver must be an ArgsStarter.
	NeedRestartArgs = "restart-args"
	// NeedDatabaseWipe: a db-data-lost fault destroys a database
	// server's data, so the driver must be a DatabaseWiper.
	NeedDatabaseWipe = "database-wipe"
)

// Unmet are the Needs of c that driver d lacks the interface of, in
// order. d may be a nil pointer of the driver's type, so a driver can
// refuse before it makes anything.
func (c Config) Unmet(d any) []string {
	var unmet []string
	for _, n := range c.Needs {
		var ok bool
		switch n {
		case NeedExitStatus:
			_, ok = d.(ExitReporter)
		case NeedRestartArgs:
			_, ok = d.(ArgsStarter)
		case NeedDatabaseWipe:
			_, ok = d.(DatabaseWiper)
		}
		if !ok {
			unmet = append(unmet, n)
		}
	}
	return unmet
}

// Factory makes the driver of one scenario's run. On error it may return
// a partial driver, which the caller must Close.
type Factory func(ctx context.Context, cfg Config) (Driver, error)

// LazyFSNodes are the nodes whose data folder a driver serves through
// lazyfs: those a power cut and those a disk fault may hit, sorted, each
// once.
func LazyFSNodes(powerCut, faultFS []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(slices.Concat(powerCut, faultFS))))
}
