package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flags binds the refbroker's command-line flags. Values given on the
// command line override the configuration file; Apply does that.
type Flags struct {
	fs     *flag.FlagSet
	config string
	set    map[string]string
	multi  map[string][]string // values of repeatable flags, in order
	defs   []flagDef
}

type flagDef struct {
	name, usage string
	apply       func(c *Config, v string) error
	applyAll    func(c *Config, vs []string) error // repeatable flags
	boolean     bool
}

// flagValue records a raw flag value for Apply; String shows the default
// in -help.
type flagValue struct {
	f    *Flags
	name string
	def  string
	bool bool
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return v.def
}

func (v *flagValue) Set(s string) error {
	v.f.set[v.name] = s
	v.f.multi[v.name] = append(v.f.multi[v.name], s)
	return nil
}

func (v *flagValue) IsBoolFlag() bool { return v.bool }

// RegisterFlags defines every configuration flag on fs, plus --config.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, set: make(map[string]string), multi: make(map[string][]string)}
	d := Default()
	fs.StringVar(&f.config, "config", "", "read configuration from this YAML `file`; flags override it")
	f.def("listen", "STOMP listen `address`, or fd:N: a TCP socket inherited bound from the parent (see Inherited sockets)", d.Listen, false, func(c *Config, v string) error { c.Listen = v; return nil })
	f.def("admin", "HTTP admin `address` (/healthz /readyz /metrics /status), or fd:N (an inherited socket); empty disables", d.Admin, false,
		func(c *Config, v string) error { c.Admin = v; return nil })
	f.def("store", "message `store`: memory (lost on crash), journal (durable), jdbc (a SQL database) or journaled-jdbc (journal checkpointed into the database)", d.Store, false,
		func(c *Config, v string) error { c.Store = v; return nil })
	f.def("db-driver", "jdbc store `database`: sqlite (a file under --data), postgres or mysql (MariaDB); with several --dsn, once for all of them or once per --dsn in the same order", "sqlite", false,
		func(c *Config, v string) error { c.DBDriver = v; return nil })
	f.def("dsn", "jdbc store data source `name`, e.g. postgres://user@127.0.0.1:5432/db or user@tcp(127.0.0.1:3306)/db (several servers, tcp(h1:3306,h2:3306), for a Galera cluster: the first ready one, in order); empty with sqlite. Given several times: replicated JDBC (C-JDBC), every write to each database (a sqlite one is a file path, relative to --data)", "", false,
		func(c *Config, v string) error { c.DSN = v; return nil })
	f.def("write-policy", "replicated jdbc (several --dsn): RECEIPT once all enabled databases committed (all), more than half of them (majority), or the first one (first; may lose what only that database had)", d.WritePolicy, false,
		func(c *Config, v string) error { c.WritePolicy = v; return nil })
	f.def("min-databases", "replicated jdbc (several --dsn): fail stop when fewer than this many databases are enabled", strconv.Itoa(d.MinDatabases), false,
		intSetter(func(c *Config) *int { return &c.MinDatabases }))
	f.def("checkpoint-interval", "journaled-jdbc: how often the journal is checkpointed into the database", "1s", false,
		durSetter(func(c *Config) *time.Duration { return &c.CheckpointInterval }))
	f.def("checkpoint-bytes", "journaled-jdbc: journal `bytes` written since the last checkpoint that start one early", "32MiB", false,
		sizeSetter(func(c *Config) *ByteSize { return &c.CheckpointBytes }))
	f.def("lease", "database master/slave (with --store jdbc or journaled-jdbc): stand by, /readyz 503 and no STOMP listener, until this broker holds the lease row in the shared database; exit 1 when the lease is lost", "", true,
		func(c *Config, v string) (err error) { c.Lease, err = strconv.ParseBool(v); return err })
	f.def("shared", "shared-storage master/slave (with --store journal): brokers on one --data directory (a SAN or network drive); stand by, /readyz 503 and no STOMP listener, until this broker holds the lease file <data>/shared.lease (renewed every --lease-renew, taken over after --lease-ttl; each takeover increments its epoch); exit 1 when the lease is lost", "", true,
		func(c *Config, v string) (err error) { c.Shared, err = strconv.ParseBool(v); return err })
	f.def("replication-listen", "replicated master/slave (with --store journal): accept replication connections on this `address` (or fd:N, an inherited socket); stand by as a replica (/readyz 503, no STOMP listener) until this broker is master (through --witness, else elected among the --peer nodes), then stream every group commit to the replicas", "", false,
		func(c *Config, v string) error { c.ReplicationListen = v; return nil })
	f.defRepeat("peer", "replicated master/slave: another node's replication `address` (repeatable, or comma-separated)", "",
		func(c *Config, vs []string) error {
			c.Peers = nil
			for _, v := range vs {
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						c.Peers = append(c.Peers, p)
					}
				}
			}
			return nil
		})
	f.def("replica-ack", "replicated master/slave: what a replica must have done before the master counts it: fsynced (written and fdatasynced to its own journal) or received (in its memory)", d.ReplicaAck, false,
		func(c *Config, v string) error { c.ReplicaAck = v; return nil })
	f.def("min-replicas", "replicated master/slave: acknowledge a message only once this many in-sync replicas hold it (0: the master goes on alone, asynchronous in effect)", strconv.Itoa(d.MinReplicas), false,
		intSetter(func(c *Config) *int { return &c.MinReplicas }))
	f.def("witness", "replicated master/slave: the witness's `address` (refbroker witness --listen): only a node holding its grant serves as master; without one a partitioned pair may elect two", "", false,
		func(c *Config, v string) error { c.Witness = v; return nil })
	f.def("lease-owner", "`name` of this broker in the lease (--lease, --shared), unique among the brokers sharing the database or directory (default <hostname>/<listen address>, plus the pid when the port is 0)", "", false,
		func(c *Config, v string) error { c.LeaseOwner = v; return nil })
	f.def("lease-renew", "--lease, --shared: how often the master renews the lease", d.LeaseRenew.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.LeaseRenew }))
	f.def("lease-ttl", "--lease, --shared: how long a standby waits without seeing a renewal before it takes over", d.LeaseTTL.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.LeaseTTL }))
	f.def("lease-margin", "--lease, --shared: how long before lease-ttl runs out the master stops acknowledging (below lease-ttl - lease-renew)", d.LeaseMargin.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.LeaseMargin }))
	f.def("db-reconnect", "--store jdbc without --lease: when the database connection is lost, stop acknowledging and listening, reconnect with backoff (100ms doubling to 5s, jittered), recover from the database and serve again, instead of exiting 1; =false fails stop", strconv.FormatBool(d.DBReconnect), true,
		func(c *Config, v string) (err error) { c.DBReconnect, err = strconv.ParseBool(v); return err })
	f.def("db-reconnect-max", "--db-reconnect: give up and exit 1 when one outage lasts this `duration` (0: never give up)", d.DBReconnectMax.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.DBReconnectMax }))
	f.def("db-commit-timeout", "jdbc, journaled-jdbc: a database commit that takes longer than this `duration` fails with an unknown outcome, unacknowledged (a lost connection for --db-reconnect); also the server's limit on a session idle in a transaction", d.DBCommitTimeout.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.DBCommitTimeout }))
	f.defRepeat("data", "`directory` for persistent stores (the journal lives in <data>/journal); repeat it to mirror the journal: each directory (on its own disk) holds a full copy, written and fdatasynced on every healthy copy before a RECEIPT; the first holds the lock and the other stores' files", d.Data.First(),
		func(c *Config, vs []string) error { c.Data = Dirs(vs); return nil })
	f.def("min-mirrors", "mirrored journal: the fewest healthy copies a write may be acknowledged with; with fewer the broker fails stop, and at start stale copies are rebuilt first", strconv.Itoa(d.MinMirrors), false,
		intSetter(func(c *Config) *int { return &c.MinMirrors }))
	f.def("fsync", "journal sync `policy`: always, batch (group commit), interval=<duration>, never", d.Fsync, false,
		func(c *Config, v string) error { c.Fsync = v; return nil })
	f.def("segment-size", "journal segment file `bytes` (1KiB to 4GiB), preallocated; a segment is reclaimed or compacted as a whole", d.SegmentSize.String(), false,
		sizeSetter(func(c *Config) *ByteSize { return &c.SegmentSize }))
	f.def("repair", "let the journal skip corrupt frames (keeping every valid frame after them; it logs the seqs lost), or go on without a missing segment file, instead of refusing to start", "", true,
		func(c *Config, v string) (err error) { c.Repair, err = strconv.ParseBool(v); return err })
	f.def("login", "require this `login` on CONNECT (with --passcode)", "", false, func(c *Config, v string) error { c.Login = v; return nil })
	f.def("admin-token", "require `token` on every admin endpoint but /healthz, as the header Authorization: Bearer <token> (401 otherwise); the --config file keeps it out of ps", "", false,
		func(c *Config, v string) error { c.AdminToken = v; return nil })
	f.def("passcode", "required `passcode` on CONNECT (needs --login: refbroker refuses to start with a passcode alone)", "", false, func(c *Config, v string) error { c.Passcode = v; return nil })
	f.def("max-login-failures", "failed logins one address may make in a minute; past them its CONNECTs are refused unchecked and unlogged until the minute is over (0: no limit)",
		strconv.Itoa(d.MaxLoginFailures), false, intSetter(func(c *Config) *int { return &c.MaxLoginFailures }))
	f.def("max-memory", "`bytes` of messages held in memory, 512 bytes of overhead each included; past half of it persistent bodies are read back from the store at dispatch, and at it a SEND waits for consumers to free memory (producer flow control; 0: no bound)",
		d.MaxMemory.String(), false, sizeSetter(func(c *Config) *ByteSize { return &c.MaxMemory }))
	f.def("max-memory-wait", "how long a SEND waits at --max-memory before it gets ERROR \"memory limit reached\", not stored (0: at once)", d.MaxMemoryWait.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.MaxMemoryWait }))
	f.def("max-connections", "most open client `connections`; one more gets an ERROR and is closed. Lowered to fit RLIMIT_NOFILE (its soft limit raised to the hard one at start) less 256 descriptors kept for the store and admin",
		strconv.Itoa(d.MaxConnections), false, intSetter(func(c *Config) *int { return &c.MaxConnections }))
	f.def("dedup-window", "how many recent dedup-id headers are remembered to drop retried duplicates (0 disables)",
		strconv.Itoa(d.DedupWindow), false, intSetter(func(c *Config) *int { return &c.DedupWindow }))
	f.def("prefetch", "default per-subscription limit of unacknowledged `messages` (headers prefetch-count, activemq.prefetchSize override)",
		strconv.Itoa(d.Prefetch), false, intSetter(func(c *Config) *int { return &c.Prefetch }))
	f.def("max-subscriptions", "most subscriptions one connection may hold", strconv.Itoa(d.MaxSubscriptions), false,
		intSetter(func(c *Config) *int { return &c.MaxSubscriptions }))
	f.def("max-queues", "most queues clients may create by SEND or SUBSCRIBE (empty, unused queues are dropped to make room; stored queues are always recovered)",
		strconv.Itoa(d.MaxQueues), false, intSetter(func(c *Config) *int { return &c.MaxQueues }))
	f.def("max-redeliveries", "how often a message may be handed back (NACK, or its consumer gone without acking) and delivered again; once more and it moves to /queue/DLQ.<name> (0: no limit)",
		strconv.Itoa(d.MaxRedeliveries), false, intSetter(func(c *Config) *int { return &c.MaxRedeliveries }))
	f.def("heartbeat-send", "how often the broker offers to send heart-beats (0 disables)", d.Heartbeat.Send.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.Heartbeat.Send }))
	f.def("heartbeat-receive", "how often the broker asks clients for heart-beats (0 disables)", d.Heartbeat.Receive.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.Heartbeat.Receive }))
	f.def("heartbeat-grace", "drop a client silent for this `factor` times its heart-beat interval",
		strconv.FormatFloat(d.Heartbeat.Grace, 'g', -1, 64), false,
		func(c *Config, v string) (err error) { c.Heartbeat.Grace, err = strconv.ParseFloat(v, 64); return err })
	f.def("connect-timeout", "close a connection that sends no CONNECT within this `duration`", d.ConnectTimeout.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.ConnectTimeout }))
	f.def("frame-timeout", "drop a client whose frame has not arrived whole this `duration` after its first byte, whatever its heart-beats", d.FrameTimeout.String(), false,
		durSetter(func(c *Config) *time.Duration { return &c.FrameTimeout }))
	f.def("max-frame", "largest accepted frame in `bytes`", d.Limits.MaxFrame.String(), false,
		sizeSetter(func(c *Config) *ByteSize { return &c.Limits.MaxFrame }))
	f.def("max-headers", "most headers accepted in one frame", strconv.Itoa(d.Limits.MaxHeaders), false,
		intSetter(func(c *Config) *int { return &c.Limits.MaxHeaders }))
	f.def("max-header-line", "longest accepted header line in `bytes`", d.Limits.MaxHeaderLine.String(), false,
		sizeSetter(func(c *Config) *ByteSize { return &c.Limits.MaxHeaderLine }))
	f.def("max-body", "largest accepted message body in `bytes`, at least 1; above the default it raises a --max-frame left at its default, and it may not exceed an explicit one", d.Limits.MaxBody.String(), false,
		sizeSetter(func(c *Config) *ByteSize { return &c.Limits.MaxBody }))
	return f
}

func (f *Flags) def(name, usage, def string, boolean bool, apply func(*Config, string) error) {
	f.defs = append(f.defs, flagDef{name: name, usage: usage, apply: apply, boolean: boolean})
	f.fs.Var(&flagValue{f: f, name: name, def: def, bool: boolean}, name, usage)
}

// defRepeat defines a flag that may be given several times; the values
// given replace the configuration file's list.
func (f *Flags) defRepeat(name, usage, def string, apply func(*Config, []string) error) {
	f.defs = append(f.defs, flagDef{name: name, usage: usage, applyAll: apply})
	f.fs.Var(&flagValue{f: f, name: name, def: def}, name, usage)
}

// ConfigFile returns the --config value.
func (f *Flags) ConfigFile() string { return f.config }

// Apply overrides c with every flag given on the command line and
// validates the result.
func (f *Flags) Apply(c *Config) error {
	for _, d := range f.defs {
		v, ok := f.set[d.name]
		if !ok {
			continue
		}
		if d.applyAll != nil {
			if err := d.applyAll(c, f.multi[d.name]); err != nil {
				return fmt.Errorf("flag --%s: %w", d.name, err)
			}
			continue
		}
		if err := d.apply(c, v); err != nil {
			return fmt.Errorf("flag --%s: %w", d.name, err)
		}
	}
	if dsns := f.multi["dsn"]; len(dsns) > 1 {
		c.DSNs, c.DSN = dsns, ""
		if drivers := f.multi["db-driver"]; len(drivers) > 1 {
			c.DBDrivers, c.DBDriver = drivers, ""
		}
	} else if len(f.multi["db-driver"]) > 1 {
		return &Error{Field: "db-driver", Msg: "given several times with one --dsn: give --dsn once per database"}
	}
	c.fitFrame()
	if err := c.Validate(); err != nil {
		return err
	}
	return nil
}

func intSetter(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(c) = n
		return nil
	}
}

func sizeSetter(p func(*Config) *ByteSize) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := ParseByteSize(v)
		if err != nil {
			return err
		}
		*p(c) = n
		return nil
	}
}

func durSetter(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 10s", v)
		}
		*p(c) = d
		return nil
	}
}
