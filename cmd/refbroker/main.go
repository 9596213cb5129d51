// Command refbroker is the lossbench reference broker: STOMP 1.2 over a
// pluggable message store, with an HTTP admin endpoint.
//
// Exit status: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when the
// store failed or the lease (--lease) was lost at run time (fail-stop), 2
// for a bad flag or configuration, or a store or address that cannot be
// opened at start.
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
	"github.com/lossbench/lossbench/broker/sqlstore"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const shutdownTimeout = 10 * time.Second

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
idempotent. Flags override the --config file.

Exit status: 0 clean shutdown, 1 store failure or lost lease at run time,
2 bad input or a store or address that cannot be opened.

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
// the loss of the lease.
func serve(cfg *config.Config, logf func(string, ...any)) int {
	startupErr := func(format string, args ...any) int {
		logf("startup failed: "+format, args...)
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	var (
		lr       *leaseRun
		leaseErr error
		err      error
	)
	if cfg.Lease {
		if lr, err = openLease(cfg, logf); err != nil {
			return startupErr("%v", err)
		}
		// Released after the store is closed: the deferred call runs
		// after the shutdown below.
		defer lr.close()
	}
	adminOpts := admin.Options{Version: version}
	if lr != nil {
		adminOpts.Lease = lr.state
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
	var fence sqlstore.Fence
	var lost <-chan struct{} // nil without a lease: never closed
	if lr != nil {
		stopped, err := lr.standBy(sigs)
		if stopped {
			return 0
		}
		if err != nil {
			return startupErr("%v", err)
		}
		fence, lost = lr.fence(), lr.lost()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return startupErr("--listen %s: %v", cfg.Listen, err)
	}
	defer ln.Close()
	st, err := openStore(cfg, fence, logf)
	if err != nil {
		return startupErr("%v", err)
	}
	if lr != nil {
		st = lr.guard(st)
	}
	b := server.New(st, cfg.ServerOptions(version, logf))
	adm.set(admin.Handler(b, adminOpts))
	logf("store %s (fsync %s, data %s), version %s", cfg.Store, cfg.Fsync, cfg.Data, version)
	if err := b.Recover(context.Background()); err != nil {
		st.Close()
		return startupErr("%v", err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()

	code := 0
	select {
	case s := <-sigs:
		logf("%v: shutting down", s)
	case <-b.Failed():
		logf("FATAL: %v; exiting without retrying", b.Err())
		code = 1
	case <-lost:
		// Fail stop at once: no acknowledgement after this, an ERROR to
		// every client; the Guard already refuses writes.
		leaseErr = lr.lostErr()
		b.Fail(leaseErr)
		logf("FATAL: %v; exiting without retrying", leaseErr)
		code = 1
	case err := <-served:
		logf("FATAL: %v", err)
		code = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		logf("shutdown: %v", err)
	}
	if err := st.Close(); err != nil && code == 0 {
		logf("close store: %v", err)
		code = 1
	}
	if code == 0 && b.Err() != nil {
		logf("FATAL: %v", b.Err())
		code = 1
	}
	if code == 0 {
		logf("stopped")
	}
	return code
}
