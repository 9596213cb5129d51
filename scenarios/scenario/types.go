package scenario

import (
	"strconv"
	"strings"
	"time"
)

// Scenario is one parsed and validated scenario file. Every field has its
// default filled in, so a runner reads it without further checks. Pos
// fields say where the element was written, for the runner's own errors.
type Scenario struct {
	// File is the path or name the scenario was parsed from.
	File string `json:"file"`
	// Name identifies the scenario; it names its output folder.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Seed decides every random choice (fault times and targets, chance);
	// `lossbench run --seed N` overrides it. Default 1.
	Seed int64 `json:"seed"`
	// Strategy is the DR matrix row, e.g. "journal-batch".
	Strategy string `json:"strategy"`
	// Failure is the DR matrix column, one of Failures.
	Failure string `json:"failure"`
	// Matrix, when the file has one, places the scenario in the DR
	// matrix (see Cell).
	Matrix       *Matrix       `json:"matrix,omitempty"`
	Topology     Topology      `json:"topology"`
	Workload     Workload      `json:"workload"`
	Faults       []Fault       `json:"faults,omitempty"`
	Expectations []Expectation `json:"expectations,omitempty"`
	// Exits are the expectations on the nodes' exit statuses
	// (expectations: exit: {a1: 1}).
	Exits []ExitExpectation `json:"exit_expectations,omitempty"`
	// Writeback is how unsynced writes on a fault-injecting filesystem
	// (power-cut, disk faults) become durable: WritebackHost (default)
	// or WritebackNone.
	Writeback string `json:"writeback,omitempty"`
}

// Writeback models, the values of `writeback`. Part of the file format.
const (
	// WritebackHost: unsynced writes become durable as the host's kernel
	// writes them back (vm.dirty_expire_centisecs, checked every
	// vm.dirty_writeback_centisecs).
	WritebackHost = "host"
	// WritebackNone: only fsync makes data durable (the worst case).
	WritebackNone = "none"
)

// WritebackModels lists the values of `writeback`.
var WritebackModels = []string{WritebackHost, WritebackNone}

// Failures are the DR matrix columns a scenario may name in `failure`.
var Failures = []string{
	"none", "broker-crash", "broker-pause", "power-cut", "machine-lost",
	"disk-lost", "disk-full", "disk-error", "disk-stall", "disk-corrupt",
	"db-lost", "db-data-lost", "site-lost", "partition", "network",
}

// Topology is where things run: sites, the links between them, broker
// nodes, disks and databases.
type Topology struct {
	Sites     []Site     `json:"sites"`
	Links     []Link     `json:"links,omitempty"`
	Nodes     []Node     `json:"nodes"`
	Disks     []Disk     `json:"disks,omitempty"`
	Databases []Database `json:"databases,omitempty"`
}

// Site is a failure domain (a data centre): the local driver gives each its
// own loopback range.
type Site struct {
	Name string `json:"name"`
	Pos  Pos    `json:"pos"`
}

// Link is a network path between two sites. Every link goes through a
// proxy, so faults can cut it or slow it down. A link has no direction.
type Link struct {
	A   string `json:"a"`
	B   string `json:"b"`
	Pos Pos    `json:"pos"`

	aPos, bPos Pos // where each end was written
}

// Name is "a<->b", the form used in fault names and messages.
func (l Link) Name() string { return l.A + "<->" + l.B }

// Joins reports whether l connects sites x and y, in either order.
func (l Link) Joins(x, y string) bool {
	return (l.A == x && l.B == y) || (l.A == y && l.B == x)
}

// Node is a machine in a site running one broker.
type Node struct {
	Name   string `json:"name"`
	Site   string `json:"site"`
	Broker Broker `json:"broker"`
	// Spare: the node is not started with the others; a machine-lost
	// with move_disks_to naming it starts it on the lost node's disks.
	Spare bool `json:"spare,omitempty"`
	// Image is the container image a container driver runs the node
	// from (docker: it must be on the engine, never pulled); "" means
	// the refbroker image built from this source. The local driver runs
	// processes and ignores it.
	Image string `json:"image,omitempty"`
	Pos   Pos    `json:"pos"`

	sitePos Pos
}

// BrokerKind says how a node's broker is started.
type BrokerKind string

// Broker kinds.
const (
	// RefBroker is this repository's refbroker, started with its own flags
	// (--listen, --admin, --store, --fsync, --data) plus Args.
	RefBroker BrokerKind = "refbroker"
	// Command is any other broker, started as Command with placeholders
	// expanded (see Placeholders).
	Command BrokerKind = "command"
	// NATS is nats-server with JetStream, built from its Go module
	// (chaos/peers), started on a generated configuration; clients speak
	// NATS (workload protocol nats). Fsync is JetStream's sync_interval:
	// "" (the server's default, 2 minutes), "always", or a duration.
	NATS BrokerKind = "nats"
	// RabbitMQ is Debian's rabbitmq-server, started on a generated
	// configuration; clients speak AMQP 0-9-1 (workload protocol amqp).
	// Store is the queue type the clients declare: classic (default) or
	// quorum. Two or more rabbitmq nodes of a topology form one cluster.
	RabbitMQ BrokerKind = "rabbitmq"
	// ActiveMQ is Debian's ActiveMQ Classic, started on a generated
	// activemq.xml; clients speak STOMP. Store is kahadb (default) or
	// jdbc (its jdbcPersistenceAdapter on Database, a postgres database
	// of the topology). Fsync is KahaDB's journalDiskSyncStrategy: always
	// (default), periodic or never.
	ActiveMQ BrokerKind = "activemq"
)

// BrokerKinds lists every broker kind, in documentation order.
var BrokerKinds = []BrokerKind{RefBroker, Command, NATS, RabbitMQ, ActiveMQ}

// ActiveMQSyncStrategies are the fsync values of kind activemq (KahaDB's
// journalDiskSyncStrategy).
var ActiveMQSyncStrategies = []string{"always", "periodic", "never"}

// Stores of kind activemq.
const (
	ActiveMQKahaDB = "kahadb"
	ActiveMQJDBC   = "jdbc"
)

// ActiveMQStores are the stores of kind activemq.
var ActiveMQStores = []string{ActiveMQKahaDB, ActiveMQJDBC}

// RabbitMQQueueTypes are the stores (queue types) of kind rabbitmq.
var RabbitMQQueueTypes = []string{"classic", "quorum"}

// Protocols the workload's clients speak (workload protocol).
const (
	ProtocolSTOMP = "stomp"
	ProtocolNATS  = "nats"
	ProtocolAMQP  = "amqp"
)

// Protocols lists every workload protocol.
var Protocols = []string{ProtocolSTOMP, ProtocolNATS, ProtocolAMQP}

// NativeProtocol is the protocol a node of kind k speaks, "" when any
// (a command broker's is its own business).
func NativeProtocol(k BrokerKind) string {
	switch k {
	case RefBroker, ActiveMQ:
		return ProtocolSTOMP
	case NATS:
		return ProtocolNATS
	case RabbitMQ:
		return ProtocolAMQP
	}
	return ""
}

// Fsync policies a refbroker journal understands.
var FsyncPolicies = []string{"always", "batch", "never"}

// Placeholders may appear in a command broker's Command and Args, and in
// Env values; the driver replaces each with the node's value:
//
//	{listen} STOMP host:port the broker must listen on
//	{admin}  admin HTTP host:port
//	{data}   the node's data directory (on its first disk)
//	{node}   the node's name
//	{site}   the node's site
//	{dsn}    the data source name of the node's database (broker.database)
var Placeholders = []string{"listen", "admin", "data", "node", "site", "dsn", "repl"}

// NodePlaceholders name another node: {peer.NAME} is NAME's STOMP address
// and {repl.NAME} its replication address ({repl} on NAME), each as this
// node reaches it, through the link proxy between their sites.
var NodePlaceholders = []string{"peer", "repl"}

// Broker is what runs on a node.
type Broker struct {
	Kind BrokerKind `json:"kind"`
	// Store is the refbroker store ("memory", "journal", ...); for a
	// command broker a free label for reports.
	Store string `json:"store,omitempty"`
	// Fsync is the journal's fsync policy, one of FsyncPolicies, or "".
	Fsync string `json:"fsync,omitempty"`
	// Args are extra arguments: appended to refbroker's flags, or to
	// Command.
	Args []string `json:"args,omitempty"`
	// Command is the argv of a command broker, with placeholders.
	Command []string `json:"command,omitempty"`
	// Env is added to the broker's environment, values with placeholders.
	Env map[string]string `json:"env,omitempty"`
	// Database names the topology database the broker stores into: a
	// refbroker with store jdbc or journaled-jdbc gets --db-driver and
	// --dsn for it; a command broker gets it as {dsn}.
	Database string `json:"database,omitempty"`
	// Databases, instead of Database, name two or more topology
	// databases a refbroker with store jdbc replicates every write to
	// (C-JDBC, broker/store/cjdbc): it gets --db-driver and --dsn once
	// for each, in this order (a sqlite one is the file <name>.db under
	// --data).
	Databases []string `json:"databases,omitempty"`
	Pos       Pos      `json:"pos"`

	dbPos, storePos Pos
}

// DatabaseNames are the databases the broker stores into: Databases, or
// Database alone, or none.
func (b Broker) DatabaseNames() []string {
	if len(b.Databases) > 0 {
		return b.Databases
	}
	if b.Database != "" {
		return []string{b.Database}
	}
	return nil
}

// Expand replaces {name} placeholders in s with vars[name]. Unknown
// placeholders cannot occur in a validated scenario; they are left as they
// are.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		name := s[i+1 : i+j]
		b.WriteString(s[:i])
		if v, ok := vars[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// Argv returns the expanded command line of a command broker (Command then
// Args), or the expanded Args of a refbroker.
func (b Broker) Argv(vars map[string]string) []string {
	var out []string
	if b.Kind == Command {
		for _, a := range b.Command {
			out = append(out, Expand(a, vars))
		}
	}
	for _, a := range b.Args {
		out = append(out, Expand(a, vars))
	}
	return out
}

// Disk is a disk attached to a node, or shared by several (a SAN, a
// network drive: `nodes: [a1, a2]`). A node's data directory lives on its
// first attached disk that is not a mirror; on a shared disk every node
// has the same data directory, and losing a node (machine-lost) leaves the
// disk alone.
type Disk struct {
	Name string `json:"name"`
	// Node is the disk's node, the first of Nodes for a shared disk.
	Node string `json:"node"`
	// Nodes are the nodes that reach a shared disk (nil for a disk of one
	// node).
	Nodes []string `json:"nodes,omitempty"`
	// Size, if set, makes the disk a size-limited tmpfs (so it can fill).
	Size Size `json:"size,omitempty"`
	// MirrorOf names the disk this one mirrors (RAID-1), or "".
	MirrorOf string `json:"mirror_of,omitempty"`
	Pos      Pos    `json:"pos"`

	nodePos, mirrorPos Pos
	nodesPos           []Pos
}

// Attached returns the nodes that reach the disk.
func (k Disk) Attached() []string {
	if len(k.Nodes) > 0 {
		return k.Nodes
	}
	return []string{k.Node}
}

// Shared reports whether several nodes reach the disk.
func (k Disk) Shared() bool { return len(k.Nodes) > 1 }

// DatabaseKind is the engine of a database.
type DatabaseKind string

// Database kinds.
const (
	Postgres DatabaseKind = "postgres"
	MariaDB  DatabaseKind = "mariadb"
	SQLite   DatabaseKind = "sqlite"
)

// Database is a database server in a site, for JDBC-style stores, or a
// replicated cluster of them: a postgres database with Replicas is its
// primary (named Name, in Site) and standbys streaming from it, each a
// server in its own site; a mariadb database with Replicas is a MariaDB
// Galera cluster whose nodes are the server named Name and the replicas,
// every one of them taking writes. A broker names the database (the
// cluster) and is given every server, so it finds whichever is primary
// (or, on Galera, the first node that is ready); a db-lost fault or a
// repair names one server.
type Database struct {
	Name string       `json:"name"`
	Site string       `json:"site"`
	Kind DatabaseKind `json:"kind"`
	// Replicas are standbys of the primary (postgres), or the other
	// nodes of a Galera cluster (mariadb).
	Replicas []Replica `json:"replicas,omitempty"`
	// Failover, if set, promotes a replica when the primary is lost;
	// without it a lost primary stays lost until repaired (postgres
	// only: a Galera cluster has no primary).
	Failover *Failover `json:"failover,omitempty"`
	// Image is the container image a container driver runs the server
	// from (postgres:15, mariadb:10.11; never pulled); "" means the
	// driver's default for the kind. The local driver ignores it.
	Image string `json:"image,omitempty"`
	Pos   Pos    `json:"pos"`

	sitePos Pos
}

// Replica is a standby server of a replicated database. Its replication
// connection to the primary goes through the link between their sites.
type Replica struct {
	Name string `json:"name"`
	Site string `json:"site"`
	// Sync makes the primary's COMMIT wait until this standby has
	// flushed the transaction's WAL (synchronous_standby_names,
	// synchronous_commit=on); false streams asynchronously. A Galera
	// node is always synchronous (the key is refused there).
	Sync bool `json:"sync"`
	// Apply (sync: remote_apply) makes the COMMIT wait until the
	// standby has applied the transaction, so that it is visible to
	// queries there (synchronous_commit=remote_apply on every server of
	// the database); Sync is true with it.
	Apply bool `json:"apply,omitempty"`
	Pos   Pos  `json:"pos"`

	sitePos Pos
}

// RemoteApply is the value of a replica's sync that waits for the
// standby's apply, not only its flush.
const RemoteApply = "remote_apply"

// Failover is a replicated database's HA manager: it promotes a replica
// once the primary has been lost for PromoteAfter, and the lost primary
// comes back only as a standby of the new one.
type Failover struct {
	PromoteAfter Duration `json:"promote_after"`
	// MaxLag, if above 0, is how far (bytes of WAL) a replica may be
	// behind the primary's last position the HA manager saw and still
	// be promoted (Patroni's maximum_lag_on_failover). With no replica
	// that close it promotes none: the database stays unavailable until
	// the primary is back.
	MaxLag Size `json:"max_lag,omitempty"`
	Pos    Pos  `json:"pos"`
}

// DBServer is one server of a database: the primary or a replica.
type DBServer struct {
	Name, Site string
	// Replica is false for the database's first server (the primary at
	// the start).
	Replica bool
	Sync    bool
	Apply   bool // sync: remote_apply
}

// RemoteApply reports whether a replica has sync: remote_apply: then
// every server of the database commits with
// synchronous_commit=remote_apply.
func (db Database) RemoteApply() bool {
	for _, r := range db.Replicas {
		if r.Apply {
			return true
		}
	}
	return false
}

// Servers lists the database's servers: itself, then its replicas.
func (db Database) Servers() []DBServer {
	out := []DBServer{{Name: db.Name, Site: db.Site}}
	for _, r := range db.Replicas {
		out = append(out, DBServer{Name: r.Name, Site: r.Site, Replica: true, Sync: r.Sync, Apply: r.Apply})
	}
	return out
}

// Workload is what the clients do.
type Workload struct {
	// Site is where the clients run, "" for "outside every site" (they
	// still reach brokers through proxies).
	Site string `json:"site,omitempty"`
	// Connect lists the nodes clients connect to, in failover order;
	// default every node in file order.
	Connect []string `json:"connect"`
	// Protocol is what the clients speak, one of Protocols; default the
	// protocol of the nodes' kind (stomp for refbroker and command).
	Protocol     string    `json:"protocol,omitempty"`
	Destinations []string  `json:"destinations"`
	Producers    Producers `json:"producers"`
	Consumers    Consumers `json:"consumers"`
	// Duration is how long producers send, from the start of the run.
	Duration Duration `json:"duration"`
	Recovery Recovery `json:"recovery"`
	Pos      Pos      `json:"pos"`

	connectPos  []Pos // where each Connect name was written
	protocolPos Pos
	destPos     []Pos // where each destination was written
	sitePos     Pos
}

// Producers describes every producer (they are alike).
type Producers struct {
	Count int `json:"count"`
	// Rate is messages per second per producer; 0 is as fast as possible.
	Rate float64 `json:"rate"`
	// Size is the body size of each message. Default 256B.
	Size Size `json:"size"`
	// Persistent sets persistent:true on SENDs. Default true.
	Persistent bool `json:"persistent"`
	// Transactions is the number of SENDs per transaction; 0 is none.
	Transactions int `json:"transactions,omitempty"`
	// MaxMessages bounds the messages per producer; 0 is no bound.
	MaxMessages int64 `json:"max_messages,omitempty"`
}

// AckMode is a STOMP subscription ack mode.
type AckMode string

// Ack modes.
const (
	AckClientIndividual AckMode = "client-individual"
	AckClient           AckMode = "client"
	AckAuto             AckMode = "auto"
)

// Consumers describes every consumer.
type Consumers struct {
	Count int     `json:"count"`
	Ack   AckMode `json:"ack"`
	// Prefetch is the activemq.prefetchSize header; 0 is the broker's
	// default.
	Prefetch int `json:"prefetch,omitempty"`
	// StartDelay delays the consumers' start, to build a backlog.
	StartDelay Duration `json:"start_delay,omitempty"`
}

// Recovery is what happens after the producers stop: repair, wait, drain.
type Recovery struct {
	// Repair lists the nodes and databases to bring back (restart, with
	// their disks as the faults left them). RepairAll means every one that
	// is down; an empty list and !RepairAll means none ("none").
	Repair    []string `json:"repair,omitempty"`
	RepairAll bool     `json:"repair_all,omitempty"`
	// Wait is the pause after the repair before draining. Default 1s.
	Wait Duration `json:"wait"`
	// Drain bounds the drain; what is not received by then is lost.
	// Default 30s.
	Drain Duration `json:"drain"`
	// Quiet ends the drain early once no message arrived for this long.
	// Default 3s.
	Quiet Duration `json:"quiet"`

	// RestartArgs are extra broker arguments, by node, for the starts
	// of the recovery phase (e.g. refbroker's --repair after a corrupt
	// journal refused to start).
	RestartArgs map[string][]string `json:"restart_args,omitempty"`

	repairPos    []Pos // where each Repair name was written
	restartPos   []Pos // where each RestartArgs node was written
	restartNodes []string
}

// Limits of the file format: past them a value is a typo or a bomb (a
// hundred million producers, a run of a hundred years), not a run one
// harness can make, and the parser refuses it saying the limit.
const (
	// MaxClients bounds producers count and consumers count.
	MaxClients = 10_000
	// MaxDuration bounds every duration in the file.
	MaxDuration = 24 * time.Hour
	// MaxMessageSize bounds producers size.
	MaxMessageSize Size = 64 << 20
	// MaxRate bounds producers rate (messages per second per producer).
	MaxRate = 1_000_000
	// MaxTransaction bounds producers transactions (SENDs per transaction).
	MaxTransaction = 100_000
	// MaxPrefetch bounds consumers prefetch.
	MaxPrefetch = 100_000
	// MaxMessages bounds producers max_messages.
	MaxMessages = 1_000_000_000
)

// Defaults for optional workload fields; part of the file format.
const (
	DefaultSeed       = 1
	DefaultSize  Size = 256
	DefaultWait       = Duration(time.Second)
	DefaultDrain      = Duration(30 * time.Second)
	DefaultQuiet      = Duration(3 * time.Second)
)

// FaultKind is what a fault does.
type FaultKind string

// Fault kinds. The comment says what the fault targets and which extra
// keys apply.
const (
	Kill        FaultKind = "kill"         // node; SIGKILL; restart_after
	Pause       FaultKind = "pause"        // node; SIGSTOP, SIGCONT after duration
	Stop        FaultKind = "stop"         // node; SIGTERM; restart_after
	MachineLost FaultKind = "machine-lost" // node and its disks; restart_after (empty disks)
	DiskLost    FaultKind = "disk-lost"    // disk wiped; restart_after (node, empty disk)
	DiskFull    FaultKind = "disk-full"    // disk fills; duration (then freed)
	SiteLost    FaultKind = "site-lost"    // site: every node, disk, database; restart_after
	Partition   FaultKind = "partition"    // sites [a, b] or isolate node; duration
	Latency     FaultKind = "latency"      // link; delay, jitter, duration
	Bandwidth   FaultKind = "bandwidth"    // link; kb_per_s, duration
	Reset       FaultKind = "reset"        // link; connections reset, duration
	Blackhole   FaultKind = "blackhole"    // link; bytes held, connections stay open, duration
	PowerCut    FaultKind = "power-cut"    // node; kill and drop unsynced data; restart_after
	DBLost      FaultKind = "db-lost"      // database; SIGKILL; restart_after
	DBDataLost  FaultKind = "db-data-lost" // database; SIGKILL and its data destroyed; restart_after (empty)
	DiskError   FaultKind = "disk-error"   // disk; errno (EIO|ENOSPC) on ops (write, fsync, read); duration
	DiskStall   FaultKind = "disk-stall"   // disk; every operation held for duration
	DiskCorrupt FaultKind = "disk-corrupt" // disk at rest; one block of one file (glob) flipped; node restarted
)

// Errnos are the errors a disk-error fault may inject; DiskOps the
// operations it may fail. Part of the file format.
var (
	Errnos  = []string{"EIO", "ENOSPC"}
	DiskOps = []string{"write", "fsync", "read"}
)

// FaultKinds lists every kind, in documentation order.
var FaultKinds = []FaultKind{Kill, Pause, Stop, MachineLost, DiskLost, DiskFull,
	SiteLost, Partition, Latency, Bandwidth, Reset, Blackhole, PowerCut, DBLost, DBDataLost,
	DiskError, DiskStall, DiskCorrupt}

// FUSEKinds are the fault kinds that need the node's data directory on
// the fault-injecting FUSE filesystem (chaos/lazyfs); a power-cut with
// torn: true needs it too (Fault.NeedsFUSE). A disk-corrupt does not: it
// damages the files at rest, with the node stopped.
var FUSEKinds = []FaultKind{DiskError, DiskStall}

// TargetType is what kind of thing a fault acts on.
type TargetType string

// Target types.
const (
	TargetNode  TargetType = "node"
	TargetDisk  TargetType = "disk"
	TargetSite  TargetType = "site"
	TargetSites TargetType = "sites" // a pair of sites (partition)
	TargetLink  TargetType = "link"  // a pair of sites with a link
	TargetDB    TargetType = "database"
)

// Target is what one fault acts on: exactly one of its fields is set.
type Target struct {
	Node string `json:"node,omitempty"`
	Disk string `json:"disk,omitempty"`
	Site string `json:"site,omitempty"`
	// Database is a database of the topology (db-lost, db-data-lost).
	Database string `json:"database,omitempty"`
	// Sites is the pair of sites a partition separates, or a link's ends.
	Sites []string `json:"sites,omitempty"`

	pos Pos // where it was written, for reference errors
}

// String names the target: "a1", "a|b" for a partition, "a<->b" for a
// link.
func (t Target) String() string {
	switch {
	case t.Node != "":
		return t.Node
	case t.Disk != "":
		return t.Disk
	case t.Site != "":
		return t.Site
	case t.Database != "":
		return t.Database
	case len(t.Sites) == 2:
		return t.Sites[0] + "<->" + t.Sites[1]
	}
	return "?"
}

// Fault is one entry of the scenario's fault timeline as written: its time
// may be a range and its target a choice. Resolve turns it into a Step.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// At is the fault's start from the run's start, unless Between is set.
	At Duration `json:"at"`
	// Between, when set, is the [min, max] range At is drawn from.
	Between []Duration `json:"between,omitempty"`
	// Target is the fixed target, unless OneOf is set.
	Target Target `json:"target"`
	// OneOf lists the targets one is drawn from.
	OneOf []Target `json:"one_of,omitempty"`
	// Duration is how long a pause, disk-full, partition or link toxic
	// lasts.
	Duration Duration `json:"duration,omitempty"`
	// Restart says whether the node(s) restart RestartAfter after the
	// fault; otherwise they stay down until the recovery phase.
	Restart      bool     `json:"restart,omitempty"`
	RestartAfter Duration `json:"restart_after,omitempty"`
	// Delay and Jitter shape a latency toxic.
	Delay  Duration `json:"delay,omitempty"`
	Jitter Duration `json:"jitter,omitempty"`
	// KBPerSec is a bandwidth toxic's rate in KB/s.
	KBPerSec int64 `json:"kb_per_s,omitempty"`
	// Errno and Ops are a disk-error's error (one of Errnos) and the
	// operations it fails (of DiskOps; all of them when not written).
	Errno string   `json:"errno,omitempty"`
	Ops   []string `json:"ops,omitempty"`
	// File is a disk-corrupt's glob of the files one is chosen from,
	// relative to the disk; Block the block (of 4 KiB) to corrupt, nil
	// when the seed chooses it.
	File  string `json:"file,omitempty"`
	Block *int64 `json:"block,omitempty"`
	// Torn makes a power-cut tear the last unsynced write: a prefix of
	// it reaches the disk.
	Torn bool `json:"torn,omitempty"`
	// MoveDisksTo is a machine-lost's spare node that takes the lost
	// node's disks (and is started on them, after RestartAfter or at the
	// recovery) instead of the node coming back on empty disks.
	MoveDisksTo string `json:"move_disks_to,omitempty"`
	movePos     Pos
	// Node makes a disk-error or disk-stall of a shared disk hit only
	// that node's path to it: the others still reach the disk.
	Node    string `json:"node,omitempty"`
	nodePos Pos
	// Chance is the probability the fault happens at all (the seed
	// decides); default 1.
	Chance float64 `json:"chance"`
	Pos    Pos     `json:"pos"`
}

// Expectation is one metric's condition, e.g. lost: 0.
type Expectation struct {
	Metric    string    `json:"metric"`
	Condition Condition `json:"condition"`
	Pos       Pos       `json:"pos"`
}

// ExitKey is the expectation on nodes' exit statuses, and ExitNone its
// value for "never exited by itself". Part of the file format.
const (
	ExitKey  = "exit"
	ExitNone = "none"
)

// ExitExpectation says how a node's broker must have ended during the
// run, counting only the exits the harness did not cause (a kill, a
// stop, a power cut, the end of the run do not count): it exited by
// itself at least once and every time with Status, or, when Never, not
// at all.
type ExitExpectation struct {
	Node   string `json:"node"`
	Status int    `json:"status"`
	Never  bool   `json:"never,omitempty"`
	Pos    Pos    `json:"pos"`
}

// String is the expectation as written: "1" or "none".
func (e ExitExpectation) String() string {
	if e.Never {
		return ExitNone
	}
	return strconv.Itoa(e.Status)
}

// Metrics are the names an expectation may test; the checker provides a
// value for each. Their meaning is documented in chaos/checker.
var Metrics = []string{
	"attempted", "acknowledged", "received", "lost", "duplicated",
	"duplicated_ids", "unexpected", "recovered", "unconfirmed", "drained", "dead_lettered",
	"order_violations", "unavailable_s", "dual_active_s", "throughput",
	"latency_p50_ms", "latency_p99_ms", "latency_max_ms",
	"e2e_p99_ms", "recover_s",
}
