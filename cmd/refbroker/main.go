// Command refbroker is the lossbench reference broker: STOMP 1.2 over a
// pluggable message store, with an HTTP admin endpoint.
//
// Exit status: 0 after a clean shutdown (SIGTERM or SIGINT, also while
// reconnecting to the database), 1 when the store failed or the lease
// (--lease) was lost at run time (fail-stop), 2 for a bad flag or
// configuration, or a store or address that cannot be opened at start.
// With --store jdbc a lost database connection is not a failure: the
// broker reconnects (--db-reconnect, reconnect.go) and exits 1 only past
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
	"github.com/lossbench/lossbench/broker/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const shutdownTimeout = 10 * time.Second

// failStopBound bounds each step of the shutdown after a failure (the
// connections, then the store), so that a fail-stop ends the process
// even when the database holds a commit in flight.
const failStopBound = 3 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
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
	return serve(&cfg, logf)
}

// serve runs the broker until a signal, a store failure or, with --lease,
// the loss of the lease. With --store jdbc a lost database connection
// does not end it: the reconnector (reconnect.go) rides it out.
func serve(cfg *config.Config, logf func(string, ...any)) int {
	startupErr := func(format string, args ...any) int {
		logf("startup failed: "+format, args...)
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	var (
		lr  *leaseRun
		err error
	)
	if cfg.Lease {
		if lr, err = openLease(cfg, logf); err != nil {
			return startupErr("%v", err)
		}
		// Released after the store is closed: the deferred call runs
		// after the shutdown below.
		defer lr.close()
	}
	rc := newReconnector(cfg, logf)
	adminOpts := admin.Options{Version: version}
	if lr != nil {
		adminOpts.Lease = lr.state
	}
	if rc != nil {
		adminOpts.Reconnect = rc.state
	}
	adm := &handlerSwitch{}
	adm.set(admin.Handler(nil, adminOpts))
	if cfg.Admin != "" {
		adminLn, err := net.Listen("tcp", cfg.Admin)
		if err != nil {
			return startupErr("--admin %s: %v", cfg.Admin, err)
		}
		srv := &http.Server{Handler: adm, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(adminLn)
		defer srv.Close()
		logf("admin on http://%s", adminLn.Addr())
	}
	ss := &sessions{cfg: cfg, lr: lr, opts: cfg.ServerOptions(version, logf), logf: logf,
		show: func(b *server.Broker) { adm.set(admin.Handler(b, adminOpts)) }}
	if rc != nil {
		ss.opts.FailMessage = rc.failMessage
	}
	var lost <-chan struct{} // nil without a lease: never closed
	if lr != nil {
		stopped, err := lr.standBy(sigs)
		if stopped {
			return 0
		}
		if err != nil {
			return startupErr("%v", err)
		}
		ss.fence, lost = lr.fence(), lr.lost()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return startupErr("--listen %s: %v", cfg.Listen, err)
	}
	sess, err := ss.open(context.Background(), ln, 0)
	if err != nil {
		ln.Close()
		return startupErr("%v", err)
	}

	code := 0
	for stopping := false; !stopping; {
		select {
		case s := <-sigs:
			logf("%v: shutting down", s)
			stopping = true
		case <-sess.b.Failed():
			if err := sess.b.Err(); rc.rides(err) {
				next, c := rc.reconnect(err, sess, sigs, ss)
				if next == nil {
					return c
				}
				sess = next
				continue
			}
			logf("FATAL: %v; exiting without retrying", sess.b.Err())
			code, stopping = 1, true
		case <-lost:
			// Fail stop at once: no acknowledgement after this, an ERROR to
			// every client; the Guard already refuses writes.
			leaseErr := lr.lostErr()
			sess.b.Fail(leaseErr)
			logf("FATAL: %v; exiting without retrying", leaseErr)
			code, stopping = 1, true
		case err := <-sess.served:
			logf("FATAL: %v", err)
			code, stopping = 1, true
		}
	}
	// A failed broker acknowledges nothing more: waiting on a store whose
	// database stopped answering would only delay the exit of a fail-stop.
	var bound time.Duration
	if code != 0 {
		bound = failStopBound
	}
	if err := sess.stop(bound, logf); err != nil {
		logf("close store: %v", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 && sess.b.Err() != nil {
		logf("FATAL: %v", sess.b.Err())
		code = 1
	}
	if code == 0 {
		logf("stopped")
	}
	return code
}
