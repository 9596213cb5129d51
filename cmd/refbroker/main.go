// Command refbroker is the lossbench reference broker: STOMP 1.2 over a
// pluggable message store, with an HTTP admin endpoint.
//
// Exit status: 0 after a clean shutdown (SIGTERM or SIGINT, also while
// reconnecting to the database), 1 when the store failed or the lease
// (--lease, --shared) was lost at run time (fail-stop), 2 for a bad flag or
// configuration, or a store or address that cannot be opened at start.
// With --store jdbc a lost database connection is not a failure: the
// broker reconnects (--db-reconnect, broker/role) and exits 1 only past
// --db-reconnect-max.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/broker/admin"
	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/sqlstore"
	"github.com/lossbench/lossbench/broker/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "witness" {
		return runWitness(args[1:], stderr)
	}
	fs := flag.NewFlagSet("refbroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := config.RegisterFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: refbroker [flags]

refbroker is a STOMP 1.2 message broker (queues only) that never sends a
RECEIPT for a persistent SEND before the store made it durable. Send with
header persistent:true to store a message and dedup-id:<id> to make a retry
to the same queue idempotent (a different body under a known id is refused
with an ERROR). Flags override the --config file.

Exit status: 0 clean shutdown, 1 store failure or lost lease at run time
(with --store jdbc, a lost database connection only with --lease,
--db-reconnect=false or past --db-reconnect-max), 2 bad input or a store
or address that cannot be opened at start.

Losing the database (--store jdbc, without --lease): the broker stops
acknowledging at once (a SEND whose commit failed gets an ERROR, never a
RECEIPT), sends every client an ERROR "database unavailable, the broker is
reconnecting", closes its STOMP listener (clients are refused) and answers
/readyz 503 with /status role "reconnecting". It reconnects with backoff
(100ms doubling to 5s, jittered), rebuilds its queues and dedup window
from the database and listens again on --listen; resend with the same
dedup-id header. Any other store error still fails stop. journaled-jdbc
needs none of this: it acknowledges from its journal while the database
is away and checkpoints once it is back.

Database master/slave: start several brokers with --lease on one jdbc or
journaled-jdbc database. The one holding the lease row serves; the others
stand by with /readyz 503, /status role "standby" and no STOMP listener,
and take over when the master stops renewing (--lease-ttl) or releases
the lease on SIGTERM. A master that loses its lease fails stop (exit 1);
its commits carry the lease epoch, so a paused ex-master cannot write.

Shared-storage master/slave: start several brokers with --store journal
--shared on one --data directory (a SAN or network drive). The one holding
the lease file (<data>/shared.lease, changed under an flock on
<data>/shared.lock) serves; the others stand by as above and take over
when the master stops renewing (--lease-ttl) or releases the lease on
SIGTERM; each takeover increments the epoch. A master that cannot renew
stops acknowledging --lease-margin before its lease can expire and exits
1, and so does a master paused past its lease once it resumes. See the
README for what NFS or SAN mounts need for this to hold.

Replicated master/slave: start each node with --store journal
--replication-listen ADDR --peer OTHER (repeatable), each with its own
--data, ideally in different sites. A node stands by as a replica; the
master streams every group commit to the replicas and sends a RECEIPT
only after its own fdatasync and --min-replicas replicas' acks
(--replica-ack fsynced by default). With --witness ADDR (refbroker
witness --listen ADDR, in a third site) only the node holding the
witness's grant serves; without it a node that has heard from no master
for --lease-ttl elects itself, so a partition may make two masters. A
master that meets a newer epoch exits 1; restarted, it is a replica and
resyncs, discarding what it had not replicated. Run 'refbroker witness
--help' for the witness.

Inherited sockets: --listen, --admin and --replication-listen (and the
witness's --listen and --admin) also take fd:N, a TCP socket the parent
bound and passed down as file descriptor N (3 is the first one after
stdin, stdout and stderr), so that the parent holds the address across
the broker's restarts and nothing else can take it. Bind it without
listening: refbroker listens on it only while it serves, so a standby
(or a broker reconnecting to its database) refuses clients, and it stops
listening when it stops serving. The parent, which keeps its copy, must
stop the socket listening once refbroker has exited (shutdown(2) with
SHUT_RD: Go's broker/listenfd.Stop), or clients of a dead broker wait in
a backlog nobody accepts. Linux only.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Println("refbroker", version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "refbroker: unexpected argument %q (see --help)\n", fs.Arg(0))
		return 2
	}
	cfg := config.Default()
	if file := flags.ConfigFile(); file != "" {
		var err error
		if cfg, err = config.Load(file); err != nil {
			fmt.Fprintf(stderr, "refbroker: %v\n", err)
			return 2
		}
	}
	if err := flags.Apply(&cfg); err != nil {
		fmt.Fprintf(stderr, "refbroker: %v\n", err)
		return 2
	}
	logger := log.New(stderr, "refbroker: ", log.LstdFlags|log.Lmicroseconds)
	logf := logger.Printf
	if err := fitConnections(&cfg, logf); err != nil {
		fmt.Fprintf(stderr, "refbroker: %v\n", err)
		return 2
	}
	socks, shown, err := resolve(&cfg)
	if err != nil {
		fmt.Fprintf(stderr, "refbroker: %v\n", err)
		return 2
	}
	for _, w := range shown.Exposed() {
		logf("WARNING: %s", w)
	}
	return serve(&cfg, socks, logf)
}

// failMessageDB is the ERROR frames' message header when the broker stops
// for a lost database connection and reconnects.
const failMessageDB = "database unavailable, the broker is reconnecting"

// serve runs the broker cfg describes on broker/role's machine: with
// --lease it stands by for the database lease first, with --shared for
// the file lease in the data directory; with --store jdbc
// (without --lease) a lost database connection does not end it. Its
// listeners are socks' where they name inherited sockets.
func serve(cfg *config.Config, socks sockets, logf func(string, ...any)) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	o := role.Options{
		Listen:   socks.addr(cfg.Listen),
		Bind:     func() (net.Listener, error) { return socks.listen(cfg.Listen) },
		Version:  version,
		Server:   cfg.ServerOptions(version, logf),
		Describe: fmt.Sprintf("store %s (fsync %s, data %s)", cfg.Store, cfg.Fsync, cfg.Data),
		Logf:     logf,
	}
	var fence sqlstore.Fence
	if cfg.Lease {
		l, err := openLease(cfg, logf)
		if err != nil {
			logf("startup failed: %v", err)
			return 2
		}
		o.Lock, fence = l, l.Fence
	}
	if cfg.Shared {
		l, err := openShared(cfg, logf)
		if err != nil {
			logf("startup failed: %v", err)
			return 2
		}
		o.Lock = l
	}
	o.Open = func(ctx context.Context) (store.Store, error) {
		var epoch int64 // --shared: the journal records it and is fenced by it
		if cfg.Shared {
			epoch = o.Lock.Epoch()
		}
		return openStore(ctx, cfg, fence, epoch, logf)
	}
	if cfg.ReplicationListen != "" {
		n, l, err := openReplicatedNode(cfg, transport{socks: socks}, logf)
		if err != nil {
			logf("startup failed: %v", err)
			return 2
		}
		o.Lock, o.Open = replicatedLock{Lock: l, n: n}, n.Open
		o.Replication = func() any { return n.Status() }
		o.Describe = fmt.Sprintf("store replicated journal (fsync %s, data %s, min-replicas %d, replica-ack %s)", cfg.Fsync, cfg.Data, cfg.MinReplicas, cfg.ReplicaAck)
	}
	if cfg.Store == "jdbc" && !cfg.Lease && cfg.DBReconnect {
		// Every store but jdbc fails stop on a lost database:
		// journaled-jdbc acknowledges from its journal while the database
		// is away, and a journal error must never be retried; a --lease
		// master that loses its database loses its lease, and a standby
		// takes over.
		o.Reconnect = &role.ReconnectOptions{Max: cfg.DBReconnectMax, Rides: sqlstore.IsConnectionError, FailMessage: failMessageDB}
	}
	m := role.New(o)
	if cfg.Admin != "" {
		adminLn, err := socks.listen(cfg.Admin)
		if err != nil {
			if o.Lock != nil {
				o.Lock.Release()
			}
			logf("startup failed: --admin %s: %v", socks.addr(cfg.Admin), err)
			return 2
		}
		h := m.Admin()
		if cfg.AdminToken != "" {
			h = admin.RequireToken(h, cfg.AdminToken)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go srv.Serve(admin.LimitListener(adminLn, adminMaxConns))
		defer srv.Close()
		logf("admin on http://%s", adminLn.Addr())
	}
	return m.Run(sigs)
}
