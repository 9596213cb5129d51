// Package driver is the narrow interface between the harness and whatever
// runs a topology: child processes on this machine (driver/local), and
// later containers or a Kubernetes cluster. A driver starts and stops the
// broker nodes of a scenario's topology, tells clients where to connect,
// and applies faults. Capabilities that not every driver has are optional
// interfaces, found by type assertion: Disks, Links, PowerCutter, Databases,
// DiskFaulter, TornPowerCutter, DiskCorrupter. A fault
// whose capability is missing returns an error wrapping ErrUnsupported.
package driver

import (
	"context"
	"errors"
	"time"
)

// ErrUnsupported says a driver cannot do what a fault asks; the runner
// reports the scenario as skipped, with the error's text as the reason.
var ErrUnsupported = errors.New("unsupported by this driver")

// ErrUnknown is wrapped by errors about a node, disk, site or link name
// the topology does not have.
var ErrUnknown = errors.New("driver: no such name in the topology")

// Driver runs the nodes of one topology.
type Driver interface {
	// Start starts node (first start, or again after Kill or Stop) and
	// waits until it is ready to serve clients.
	Start(ctx context.Context, node string) error
	// Stop asks node to shut down (SIGTERM) and waits for it, killing it
	// when it does not stop in time.
	Stop(ctx context.Context, node string) error
	// Kill ends node at once (SIGKILL): nothing is flushed.
	Kill(ctx context.Context, node string) error
	// Pause freezes node (SIGSTOP); its connections stay open.
	Pause(ctx context.Context, node string) error
	// Resume thaws a paused node (SIGCONT).
	Resume(ctx context.Context, node string) error
	// Running reports whether node's broker process is alive (paused
	// counts as alive).
	Running(node string) bool
	// ClientAddr is the STOMP address clients use to reach node.
	ClientAddr(node string) (string, error)
	// Info describes the driver and its environment for reports.
	Info() Info
	// Close stops everything the driver started and removes what it made
	// outside the run folder (mounts, state records). It is safe to call
	// more than once and after a failed setup.
	Close() error
}

// Info describes a driver for result.json.
type Info struct {
	Name string `json:"name"`
	// Brokers is each node's command line, by node name.
	Brokers map[string][]string `json:"brokers,omitempty"`
	Notes   []string            `json:"notes,omitempty"`
	// Writeback says how the driver's fault-injecting filesystem makes
	// unsynced writes durable, e.g. "host: expire 30s, every 5s" or
	// "none"; "" when no node is on one.
	Writeback string `json:"writeback,omitempty"`
}

// Disks is a driver that can fault a node's disks.
type Disks interface {
	// WipeDisk deletes everything on disk, under a running broker if
	// there is one.
	WipeDisk(ctx context.Context, disk string) error
	// WipeNode deletes everything on every disk of node, and its default
	// data folder if it has no disk: the machine is replaced.
	WipeNode(ctx context.Context, node string) error
	// FillDisk fills disk until writes fail with "no space left".
	FillDisk(ctx context.Context, disk string) error
	// FreeDisk removes what FillDisk wrote.
	FreeDisk(ctx context.Context, disk string) error
}

// Any, as the second end of Cut or AddToxic, means every link of the
// first end.
const Any = "*"

// Links is a driver whose network links can be cut or degraded. An end is
// a site or node name; links join the ends' sites or nodes.
type Links interface {
	// Cut disables every link between a and b: live connections are cut
	// and new ones refused (reset as soon as accepted: a link keeps its
	// port while cut). Cuts nest: a link cut twice needs two Heals.
	Cut(ctx context.Context, a, b string) error
	// Heal undoes one Cut(a, b).
	Heal(ctx context.Context, a, b string) error
	// AddToxic degrades every link between a and b, in both directions,
	// until RemoveToxic(id).
	AddToxic(ctx context.Context, a, b string, t Toxic) (id string, err error)
	// RemoveToxic removes a toxic AddToxic added.
	RemoveToxic(ctx context.Context, id string) error
}

// Toxic kinds.
const (
	ToxicLatency   = "latency"   // Latency (+- Jitter) added to each chunk
	ToxicBandwidth = "bandwidth" // KBPerSec limit
	ToxicReset     = "reset"     // connections closed when data flows
	ToxicBlackhole = "blackhole" // data stops, connections stay open
)

// Toxic is one degradation of a link. It applies, always, for as long as
// it is installed: the harness, not chance, decides when, so a seed
// replays.
type Toxic struct {
	Kind     string
	Latency  time.Duration
	Jitter   time.Duration
	KBPerSec int64
}

// PowerCutter is a driver that can cut a node's power: kill it and drop
// what its disks had not synced.
type PowerCutter interface {
	PowerCut(ctx context.Context, node string) error
}

// SiteNetworks is implemented by a driver whose sites are networks it can
// take from their nodes (docker): site-lost disconnects the lost site's
// network from its nodes, and its recovery connects it again before the
// nodes start.
type SiteNetworks interface {
	DisconnectSite(ctx context.Context, site string) error
	ConnectSite(ctx context.Context, site string) error
}

// ArgsStarter is a driver that can start a node with extra broker
// arguments for that start only (the recovery's restart_args).
type ArgsStarter interface {
	StartWithArgs(ctx context.Context, node string, args []string) error
}
