// Package config is the refbroker's configuration: a YAML file decoded
// strictly (unknown keys are errors that name file:line), overridden by
// command-line flags, and mapped onto server.Options.
//
// Example file:
//
//	listen: 127.0.0.1:61613
//	admin: 127.0.0.1:8161      # "" disables the HTTP admin
//	admin-token: s3cret        # then required as "Authorization: Bearer s3cret" (not on /healthz)
//	store: journal             # memory | journal
//	data: /var/lib/refbroker   # or a list: the journal mirrored in each
//	min-mirrors: 1             # healthy journal copies needed to acknowledge
//	fsync: batch               # always | batch | interval=10ms | never
//	segment-size: 64MiB        # journal segment files (1KiB to 4GiB)
//	lease: false               # jdbc master/slave: stand by until master
//	shared: false              # journal master/slave on a shared data directory
//	lease-ttl: 5s              # also lease-owner, lease-renew, lease-margin
//	db-reconnect: true         # jdbc: reconnect after losing the database
//	db-reconnect-max: 0s       # give up (exit 1) after this long; 0 never
//	db-commit-timeout: 30s     # a database commit taking longer fails (unknown outcome)
//	dsns: [a.db, b.db]         # jdbc over several databases (C-JDBC); db-drivers: [sqlite, postgres]
//	write-policy: all          # all | majority | first: when the replicated store acknowledges
//	min-databases: 1           # fewer enabled databases: fail stop
//	max-memory: 256MiB
//	max-memory-wait: 30s       # a SEND held at max-memory gets an ERROR after this
//	max-connections: 10000     # lowered to fit RLIMIT_NOFILE less a reserve
//	dedup-window: 100000
//	prefetch: 16               # per subscription unless SUBSCRIBE says prefetch-count / activemq.prefetchSize
//	max-subscriptions: 1000    # per connection
//	max-queues: 10000          # queues clients may create
//	max-login-failures: 5      # per address and minute; 0 no limit
//	max-redeliveries: 6        # then /queue/DLQ.<name>; 0 no limit
//	heartbeat: {send: 10s, receive: 10s, grace: 2}
//	frame-timeout: 60s         # a frame must arrive whole this long after its first byte
//	limits: {max-frame: 17MiB, max-headers: 128, max-header-line: 8KiB, max-body: 16MiB}
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/server"
	"github.com/lossbench/lossbench/broker/stomp"
)

// DefaultMaxConnections is well below the usual hard RLIMIT_NOFILE (2^19
// or more) and a few hundred MiB of connection buffers at most.
const DefaultMaxConnections = 10_000

// Config is the refbroker's configuration.
type Config struct {
	// Listen is the STOMP address.
	Listen string `yaml:"listen"`
	// Admin is the HTTP admin address; empty disables it.
	Admin string `yaml:"admin"`
	// Store names the message store: memory, journal, jdbc or
	// journaled-jdbc.
	Store string `yaml:"store"`
	// DBDriver is the jdbc store's database: sqlite (default), postgres or
	// mysql (MariaDB).
	DBDriver string `yaml:"db-driver"`
	// DSN is the jdbc store's data source name; empty with sqlite means a
	// file under Data.
	DSN string `yaml:"dsn"`
	// DSNs, with two or more, make the jdbc store replicated (C-JDBC,
	// broker/store/cjdbc): every write goes to each of these databases.
	// DBDrivers names each one's driver (one entry each), or DBDriver all
	// of them. A sqlite entry is a file path (relative to Data) or a
	// file: URI.
	DSNs      []string `yaml:"dsns"`
	DBDrivers []string `yaml:"db-drivers"`
	// WritePolicy is when the replicated store acknowledges: all,
	// majority or first (see broker/store/cjdbc).
	WritePolicy string `yaml:"write-policy"`
	// MinDatabases is how many databases the replicated store needs
	// enabled to go on acknowledging; below it fails stop.
	MinDatabases int `yaml:"min-databases"`
	// CheckpointInterval is how often journaled-jdbc moves its journal
	// into the database; CheckpointBytes starts one early.
	CheckpointInterval time.Duration `yaml:"checkpoint-interval"`
	CheckpointBytes    ByteSize      `yaml:"checkpoint-bytes"`
	// Lease makes the broker one of several sharing the jdbc database in
	// master/slave (broker/lease): it stands by, without a STOMP listener,
	// until it holds the lease row, and stops for good when it loses it.
	Lease bool `yaml:"lease"`
	// Shared makes the broker one of several sharing the journal's data
	// directory (a SAN or network drive) in master/slave
	// (broker/filelease): it stands by, without a STOMP listener, until it
	// holds the lease file in Data, and stops for good when it loses it.
	// LeaseOwner, LeaseRenew, LeaseTTL and LeaseMargin apply as for Lease.
	Shared bool `yaml:"shared"`
	// ReplicationListen makes the broker one of a replicated master/slave
	// group (broker/replication): it accepts replication connections
	// there, stands by as a replica of the master, and serves once its
	// lock (Witness, or without one the peers) makes it master.
	ReplicationListen string `yaml:"replication-listen"`
	// Peers are the other nodes' replication addresses.
	Peers []string `yaml:"peers"`
	// ReplicaAck is what a replica must have done before the master counts
	// it: fsynced (the default) or received.
	ReplicaAck string `yaml:"replica-ack"`
	// MinReplicas is how many in-sync replicas must hold a write before it
	// is acknowledged; 0 lets a master go on alone (asynchronous).
	MinReplicas int `yaml:"min-replicas"`
	// Witness is the witness's address (refbroker witness); empty elects
	// the master among the peers, with the split-brain risk that brings.
	Witness string `yaml:"witness"`
	// LeaseOwner names this broker in the lease row; empty means
	// "<hostname>/<listen address>". It must be unique among the brokers
	// sharing the database.
	LeaseOwner string `yaml:"lease-owner"`
	// LeaseRenew, LeaseTTL and LeaseMargin are lease.Options' Renew, TTL
	// and Margin: the master renews every LeaseRenew, a standby takes over
	// after LeaseTTL without a renewal, and the master stops considering
	// itself master LeaseMargin before that.
	LeaseRenew  time.Duration `yaml:"lease-renew"`
	LeaseTTL    time.Duration `yaml:"lease-ttl"`
	LeaseMargin time.Duration `yaml:"lease-margin"`
	// DBReconnect makes the jdbc store (without Lease) ride out a lost
	// database connection: the broker stops acknowledging and listening,
	// reconnects with capped exponential backoff, recovers from the
	// database and serves again, instead of exiting. Other stores ignore
	// it: journaled-jdbc acknowledges from its journal while the database
	// is away, and a lease master that loses its database exits.
	DBReconnect bool `yaml:"db-reconnect"`
	// DBReconnectMax is how long one outage may last before the broker
	// gives up and exits 1; 0 waits for as long as it takes.
	DBReconnectMax time.Duration `yaml:"db-reconnect-max"`
	// DBCommitTimeout bounds one database commit (jdbc, journaled-jdbc):
	// past it the outcome is unknown, nothing of it is acknowledged, and
	// the store fails as on a lost connection. It also bounds how long the
	// server keeps a session idle inside a transaction (without --lease;
	// with it, the lease TTL does).
	DBCommitTimeout time.Duration `yaml:"db-commit-timeout"`
	// Data are the directories persistent stores keep their files under:
	// one, or for the journal several, each holding a full copy of it
	// (the mirrored journal); the first holds the lock and the other
	// stores' files. YAML takes one directory or a list.
	Data Dirs `yaml:"data"`
	// MinMirrors is the fewest healthy journal copies a write may be
	// acknowledged with (several Data directories).
	MinMirrors int `yaml:"min-mirrors"`
	// Fsync is the journal's sync policy: always, batch, interval=<d>, never.
	Fsync string `yaml:"fsync"`
	// SegmentSize is the size of a journal segment file.
	SegmentSize ByteSize `yaml:"segment-size"`
	// Repair lets the journal skip corrupt frames, or go on without a
	// missing segment, instead of refusing to start.
	Repair bool `yaml:"repair"`
	// Login and Passcode are required on CONNECT when Login is set; a
	// Passcode without a Login is refused.
	Login    string `yaml:"login"`
	Passcode string `yaml:"passcode"`
	// MaxLoginFailures is how many failed logins one address may make in
	// a minute before its CONNECTs are refused unchecked; 0 is no limit.
	MaxLoginFailures int `yaml:"max-login-failures"`
	// AdminToken, when set, is required on every admin endpoint but
	// /healthz as "Authorization: Bearer <token>" (admin.RequireToken).
	AdminToken string `yaml:"admin-token"`
	// MaxMemory bounds the messages held in memory, per-message overhead
	// included; 0 is no bound.
	MaxMemory ByteSize `yaml:"max-memory"`
	// MaxMemoryWait is how long a SEND waits at MaxMemory (producer flow
	// control) before it gets an ERROR; 0 refuses at once.
	MaxMemoryWait time.Duration `yaml:"max-memory-wait"`
	// MaxConnections bounds open client connections; refbroker lowers it
	// to fit below RLIMIT_NOFILE with descriptors to spare for the store.
	MaxConnections int `yaml:"max-connections"`
	// DedupWindow is how many recent dedup-id headers are remembered;
	// 0 disables duplicate detection.
	DedupWindow int `yaml:"dedup-window"`
	// Prefetch is the default per-subscription in-flight limit.
	Prefetch int `yaml:"prefetch"`
	// MaxSubscriptions bounds one connection's subscriptions, MaxQueues
	// the queues clients may create.
	MaxSubscriptions int `yaml:"max-subscriptions"`
	MaxQueues        int `yaml:"max-queues"`
	// MaxRedeliveries is how often a message may be handed back before it
	// moves to /queue/DLQ.<name>; 0 is no limit.
	MaxRedeliveries int `yaml:"max-redeliveries"`
	// Heartbeat is the broker's heart-beat offer.
	Heartbeat Heartbeat `yaml:"heartbeat"`
	// ConnectTimeout bounds the wait for a new connection's CONNECT.
	ConnectTimeout time.Duration `yaml:"connect-timeout"`
	// FrameTimeout bounds a frame from its first byte to its last.
	FrameTimeout time.Duration `yaml:"frame-timeout"`
	// Limits bound what a client may send.
	Limits Limits `yaml:"limits"`
}

// Heartbeat is the broker's STOMP heart-beat offer; 0 disables a direction.
type Heartbeat struct {
	Send    time.Duration `yaml:"send"`
	Receive time.Duration `yaml:"receive"`
	// Grace multiplies the negotiated client interval before a silent
	// client is dropped.
	Grace float64 `yaml:"grace"`
}

// Limits bound one client frame.
type Limits struct {
	MaxFrame      ByteSize `yaml:"max-frame"`
	MaxHeaders    int      `yaml:"max-headers"`
	MaxHeaderLine ByteSize `yaml:"max-header-line"`
	MaxBody       ByteSize `yaml:"max-body"`
}

// Default returns the configuration used when neither file nor flag says
// otherwise.
func Default() Config {
	l := stomp.DefaultLimits()
	return Config{
		Listen:     "127.0.0.1:61613",
		Admin:      "127.0.0.1:8161",
		Store:      "journal",
		Data:       Dirs{"data"},
		Fsync:      "batch",
		MinMirrors: 1,
		// broker/lease's defaults, not imported: that would link the
		// database drivers into every user of this package.
		LeaseRenew:       time.Second,
		LeaseTTL:         5 * time.Second,
		ReplicaAck:       "fsynced",
		MinReplicas:      1,
		LeaseMargin:      time.Second,
		DBReconnect:      true,
		WritePolicy:      "all",
		MinDatabases:     1,
		DBCommitTimeout:  30 * time.Second,
		SegmentSize:      journal.DefaultSegmentSize,
		MaxMemory:        256 << 20,
		MaxMemoryWait:    server.DefaultMemoryWait,
		MaxConnections:   DefaultMaxConnections,
		DedupWindow:      server.DefaultDedupWindow,
		Prefetch:         server.DefaultPrefetch,
		MaxSubscriptions: server.DefaultMaxSubs,
		MaxQueues:        server.DefaultMaxQueues,
		MaxRedeliveries:  server.DefaultMaxRedeliveries,
		MaxLoginFailures: server.DefaultMaxLoginFailures,
		Heartbeat:        Heartbeat{Send: server.DefaultHeartbeat, Receive: server.DefaultHeartbeat, Grace: server.DefaultHeartbeatGrace},
		ConnectTimeout:   server.DefaultConnectTimeout,
		FrameTimeout:     server.DefaultFrameTimeout,
		Limits: Limits{
			MaxFrame:      ByteSize(l.MaxFrame),
			MaxHeaders:    l.MaxHeaders,
			MaxHeaderLine: ByteSize(l.MaxHeaderLine),
			MaxBody:       ByteSize(l.MaxBody),
		},
	}
}

// Error is a configuration error, located in a file when it came from one.
type Error struct {
	File  string // empty for flags
	Line  int    // 0 when unknown
	Field string // e.g. "heartbeat.grace"; empty for syntax errors
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else {
		b.WriteString("config: ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads file over Default. Unknown keys, wrong types and invalid
// values are errors naming file:line.
func Load(file string) (Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Config{}, &Error{File: file, Msg: err.Error()}
	}
	return Parse(file, data)
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse decodes data, named file in errors, over Default.
func Parse(file string, data []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		return Config{}, yamlError(file, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, yamlError(file, err)
	}
	c.fitFrame()
	if err := c.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = file
			ce.Line = lineOf(&root, ce.Field)
		}
		return Config{}, err
	}
	return c, nil
}

func yamlError(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	// Report the first problem with its line; yaml.v3 lists them in order.
	msg := msgs[0]
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = m[2]
		if len(msgs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(msgs)-1)
		}
		return &Error{File: file, Line: line, Msg: msg}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// lineOf finds the line of a dotted key in a YAML document, or 0.
func lineOf(root *yaml.Node, field string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for key := range strings.SplitSeq(field, ".") {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// fitFrame raises a max-frame left at its default to fit a max-body above
// the default, with the default's room for headers.
func (c *Config) fitFrame() {
	d := Default().Limits
	if c.Limits.MaxFrame == d.MaxFrame && c.Limits.MaxBody > d.MaxBody {
		c.Limits.MaxFrame = c.Limits.MaxBody + (d.MaxFrame - d.MaxBody)
	}
}

// Validate checks values that decoding alone cannot.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Listen == "":
		return bad("listen", "must not be empty")
	case c.Store == "":
		return bad("store", "must not be empty")
	case c.SegmentSize < journal.MinSegmentSize || c.SegmentSize > journal.MaxSegmentSize:
		return bad("segment-size", "%v is outside %v to %v", c.SegmentSize, ByteSize(journal.MinSegmentSize), ByteSize(journal.MaxSegmentSize))
	case c.MaxMemory < 0:
		return bad("max-memory", "must not be negative")
	case c.MaxMemoryWait < 0:
		return bad("max-memory-wait", "must not be negative (0 refuses at once)")
	case c.MaxConnections < 1:
		return bad("max-connections", "must be at least 1, not %d", c.MaxConnections)
	case c.DedupWindow < 0:
		return bad("dedup-window", "must not be negative")
	case c.Prefetch < 1:
		return bad("prefetch", "must be at least 1, not %d", c.Prefetch)
	case c.MaxSubscriptions < 1:
		return bad("max-subscriptions", "must be at least 1, not %d", c.MaxSubscriptions)
	case c.MaxQueues < 1:
		return bad("max-queues", "must be at least 1, not %d", c.MaxQueues)
	case c.MaxLoginFailures < 0:
		return bad("max-login-failures", "must not be negative (0 is no limit)")
	case c.MaxRedeliveries < 0:
		return bad("max-redeliveries", "must not be negative (0 is no limit)")
	case c.Heartbeat.Send < 0:
		return bad("heartbeat.send", "must not be negative")
	case c.Heartbeat.Receive < 0:
		return bad("heartbeat.receive", "must not be negative")
	case c.Heartbeat.Grace < 1:
		return bad("heartbeat.grace", "must be at least 1, not %g", c.Heartbeat.Grace)
	case c.ConnectTimeout <= 0:
		return bad("connect-timeout", "must be positive")
	case c.FrameTimeout <= 0:
		return bad("frame-timeout", "must be positive")
	case c.Limits.MaxFrame < 64:
		return bad("limits.max-frame", "must be at least 64 bytes")
	case c.Limits.MaxHeaders < 1:
		return bad("limits.max-headers", "must be at least 1")
	case c.Limits.MaxHeaderLine < 64:
		return bad("limits.max-header-line", "must be at least 64 bytes")
	case c.Limits.MaxBody < 1:
		return bad("limits.max-body", "must be at least 1 byte, not %d", c.Limits.MaxBody)
	case c.Limits.MaxBody > c.Limits.MaxFrame:
		return bad("limits.max-body", "%v is larger than limits.max-frame %v, so no such body could arrive: raise max-frame too (left at its default, it is raised to fit)",
			c.Limits.MaxBody, c.Limits.MaxFrame)
	case c.Passcode != "" && c.Login == "":
		return bad("passcode", "is set without login: CONNECT would be accepted without credentials; set login too")
	case len(c.Data) == 0:
		return bad("data", "must name a directory")
	case c.Data.dup() != "":
		return bad("data", "%s is given twice: each copy of the journal needs its own directory (on its own disk)", c.Data.dup())
	case len(c.Data) > 1 && c.Store != "journal":
		return bad("data", "several directories (a mirrored journal) need store journal, not %q", c.Store)
	case len(c.Data) > 1 && c.Shared:
		return bad("data", "several directories (a mirrored journal) and shared are not supported together")
	case c.MinMirrors < 1 || c.MinMirrors > max(len(c.Data), 1):
		return bad("min-mirrors", "%d is outside 1 to %d (the data directories given)", c.MinMirrors, len(c.Data))
	case c.Shared && c.Lease:
		return bad("shared", "and lease are two kinds of master/slave (a shared directory, a shared database): pick one")
	case c.Lease && c.Store != "jdbc" && c.Store != "journaled-jdbc":
		return bad("lease", "needs store jdbc or journaled-jdbc (the brokers share the database), not %q", c.Store)
	case c.ReplicationListen == "" && (len(c.Peers) > 0 || c.Witness != ""):
		return bad("peer", "and witness need replication-listen (replicated master/slave)")
	case c.ReplicationListen != "" && (c.Shared || c.Lease):
		return bad("replication-listen", "is replicated master/slave; shared and lease are other kinds: pick one")
	case c.ReplicationListen != "" && c.Store != "journal":
		return bad("replication-listen", "needs store journal (its records are what is replicated), not %q", c.Store)
	case c.ReplicationListen != "" && len(c.Data) > 1:
		return bad("replication-listen", "keeps one journal per node: give one data directory, not %d (the replicas are the copies)", len(c.Data))
	case c.ReplicationListen != "" && len(c.Peers) == 0:
		return bad("peer", "replication-listen needs at least one peer (--peer ADDR, repeatable)")
	case c.ReplicaAck != "fsynced" && c.ReplicaAck != "received":
		return bad("replica-ack", "%q: want received or fsynced", c.ReplicaAck)
	case c.MinReplicas < 0 || c.ReplicationListen != "" && c.MinReplicas > len(c.Peers):
		return bad("min-replicas", "%d: want 0 to the number of peers (%d)", c.MinReplicas, len(c.Peers))
	case c.Shared && c.Store != "journal":
		return bad("shared", "needs store journal (the brokers share its data directory), not %q", c.Store)
	case c.LeaseRenew <= 0:
		return bad("lease-renew", "must be positive")
	case c.LeaseTTL <= 0:
		return bad("lease-ttl", "must be positive")
	case c.LeaseMargin <= 0:
		return bad("lease-margin", "must be positive")
	case c.DBCommitTimeout <= 0:
		return bad("db-commit-timeout", "must be positive")
	case len(c.DSNs) == 1:
		return bad("dsns", "has one entry: a replicated jdbc store needs two or more (use dsn for one database)")
	case len(c.DSNs) > 1 && c.DSN != "":
		return bad("dsn", "and dsns are both set: give one database in dsn or several in dsns")
	case len(c.DSNs) > 1 && c.Store != "jdbc":
		return bad("dsns", "(several databases, C-JDBC) needs store jdbc, not %q", c.Store)
	case len(c.DSNs) > 1 && c.Lease:
		return bad("lease", "is not supported with several databases (dsns): the lease row lives in one database")
	case len(c.DBDrivers) > 0 && len(c.DBDrivers) != len(c.DSNs):
		return bad("db-drivers", "has %d entries for %d databases: give one driver per dsn, or one db-driver for all", len(c.DBDrivers), len(c.DSNs))
	case c.WritePolicy != "all" && c.WritePolicy != "majority" && c.WritePolicy != "first":
		return bad("write-policy", "%q is not all, majority or first", c.WritePolicy)
	case c.MinDatabases < 1:
		return bad("min-databases", "must be at least 1, not %d", c.MinDatabases)
	case len(c.DSNs) > 1 && c.MinDatabases > len(c.DSNs):
		return bad("min-databases", "%d is more than the %d databases", c.MinDatabases, len(c.DSNs))
	case c.DBReconnectMax < 0:
		return bad("db-reconnect-max", "must not be negative (0 reconnects for as long as it takes)")
	case c.LeaseMargin >= c.LeaseTTL-c.LeaseRenew:
		return bad("lease-margin", "%v must be below lease-ttl - lease-renew (%v - %v) for renewals to keep the lease",
			c.LeaseMargin, c.LeaseTTL, c.LeaseRenew)
	}
	if err := CheckFsync(c.Fsync); err != nil {
		return bad("fsync", "%v", err)
	}
	return nil
}

// Exposed returns a warning for each address that is not loopback and has
// no credentials: a STOMP listener without --login, an admin endpoint
// without --admin-token. refbroker logs them at start.
func (c *Config) Exposed() []string {
	var out []string
	if !isLoopback(c.Listen) && c.Login == "" {
		out = append(out, fmt.Sprintf("--listen %s is not a loopback address and no --login is set: anyone who reaches it can send and consume messages", c.Listen))
	}
	if c.Admin != "" && !isLoopback(c.Admin) && c.AdminToken == "" {
		out = append(out, fmt.Sprintf("--admin %s is not a loopback address and no --admin-token is set: anyone who reaches it can read /status and /metrics", c.Admin))
	}
	return out
}

// isLoopback reports whether a listen address binds only loopback: a
// loopback IP or "localhost". An empty host, 0.0.0.0, :: or any other
// name is taken as reachable from elsewhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckFsync checks the syntax of an fsync policy: always, batch,
// interval=<duration> or never.
func CheckFsync(s string) error {
	switch s {
	case "always", "batch", "never":
		return nil
	}
	if d, ok := strings.CutPrefix(s, "interval="); ok {
		v, err := time.ParseDuration(d)
		if err != nil || v <= 0 {
			return fmt.Errorf("bad interval %q: want a positive duration such as 10ms", d)
		}
		return nil
	}
	return fmt.Errorf("%q is not always, batch, interval=<duration> or never", s)
}

// ServerOptions maps c onto the broker's options.
func (c *Config) ServerOptions(version string, logf func(string, ...any)) server.Options {
	disable := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	dedup, redeliveries := c.DedupWindow, c.MaxRedeliveries
	if dedup == 0 {
		dedup = -1
	}
	if redeliveries == 0 {
		redeliveries = -1
	}
	loginFailures := c.MaxLoginFailures
	if loginFailures == 0 {
		loginFailures = -1
	}
	return server.Options{
		Limits: stomp.Limits{
			MaxFrame:      int(c.Limits.MaxFrame),
			MaxHeaders:    c.Limits.MaxHeaders,
			MaxHeaderLine: int(c.Limits.MaxHeaderLine),
			MaxBody:       int(c.Limits.MaxBody),
		},
		Login:            c.Login,
		Passcode:         c.Passcode,
		MaxMemory:        int64(c.MaxMemory),
		MemoryWait:       disable(c.MaxMemoryWait),
		MaxConnections:   c.MaxConnections,
		DedupWindow:      dedup,
		Prefetch:         c.Prefetch,
		MaxSubscriptions: c.MaxSubscriptions,
		MaxQueues:        c.MaxQueues,
		MaxRedeliveries:  redeliveries,
		MaxLoginFailures: loginFailures,
		HeartbeatSend:    disable(c.Heartbeat.Send),
		HeartbeatReceive: disable(c.Heartbeat.Receive),
		HeartbeatGrace:   c.Heartbeat.Grace,
		ConnectTimeout:   c.ConnectTimeout,
		FrameTimeout:     c.FrameTimeout,
		Version:          version,
		Logf:             logf,
	}
}
