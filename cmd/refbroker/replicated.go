package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lossbench/lossbench/broker/config"
	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/replication"
	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/store"
)

// openReplicatedNode starts this broker's replication node (--replication-listen)
// over its journal in <data>/journal, and the lock that makes it master:
// the witness's grant (--witness) or, without one, the election among the
// peers.
func openReplicatedNode(cfg *config.Config, tr replication.Transport, logf func(string, ...any)) (*replication.Node, role.Lock, error) {
	jo, err := journalOptions(cfg, logf)
	if err != nil {
		return nil, nil, err
	}
	ack, err := replication.ParseAckMode(cfg.ReplicaAck)
	if err != nil {
		return nil, nil, fmt.Errorf("--replica-ack: %w", err)
	}
	id := leaseOwner(cfg)
	n, err := replication.New(replication.Options{
		ID: id, Dir: cfg.Data.First(), Listen: cfg.ReplicationListen, Peers: cfg.Peers,
		Ack: ack, MinReplicas: cfg.MinReplicas, Logf: logf, Transport: tr,
		OpenStore: func(dir string, tap func([]*store.Batch)) (store.Store, error) {
			jo := jo
			jo.Tap = tap
			st, err := journal.Open(dir, jo)
			if err != nil {
				return nil, fmt.Errorf("open journal %s: %w", dir, err)
			}
			return st, nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	var l role.Lock
	if cfg.Witness != "" {
		l = replication.NewWitnessLock(n, cfg.Witness, role.TermOptions{Renew: cfg.LeaseRenew, TTL: cfg.LeaseTTL, Margin: cfg.LeaseMargin, Logf: logf})
		logf("replication: %s on %s stands by (witness %s, peers %v, min-replicas %d, replica-ack %s)", id, n.Addr(), cfg.Witness, cfg.Peers, cfg.MinReplicas, ack)
	} else {
		l = replication.NewPeerLock(n, cfg.LeaseTTL)
		logf("replication: %s on %s stands by (no witness: elected among peers %v after %v without a master; a partition may elect two; min-replicas %d, replica-ack %s)", id, n.Addr(), cfg.Peers, cfg.LeaseTTL, cfg.MinReplicas, ack)
	}
	return n, l, nil
}

// replicatedLock is the node's lock for the role machine: released, it
// also stops the node (its listener, its links).
type replicatedLock struct {
	role.Lock
	n *replication.Node
}

func (r replicatedLock) Release() error {
	err := r.Lock.Release()
	return errors.Join(err, r.n.Close())
}

// runWitness is `refbroker witness`: the third party of a replicated
// pair, in a third site.
func runWitness(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("refbroker witness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:61620", "`address` the nodes reach the witness on, or fd:N (an inherited socket, see refbroker --help)")
	ttl := fs.Duration("lease-ttl", role.DefaultTTL, "how long a grant lasts without a renewal; at least the nodes' --lease-ttl (a node refuses a shorter one at start)")
	adminAddr := fs.String("admin", "", "HTTP `address` (or fd:N) for /healthz, /readyz (200 while serving) and /status (the grant: epoch, holder, in-sync replicas); empty disables")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: refbroker witness [flags]

The witness of replicated master/slave: a tiny process in a third site.
It grants the master role to one node at a time, with an epoch one
higher than the last; the master renews its grant every --lease-renew
and reports its in-sync replicas. Once a grant has gone --lease-ttl
without a renewal the witness grants the next epoch, and only to a node
that holds everything acknowledged (the last master, or a replica it
reported in sync). A partitioned pair so never has two masters: only
the side that reaches the witness serves. State is in memory: a
restarted witness waits one TTL before granting, so that a live master
claims its grant back first.

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
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "refbroker witness: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logf := log.New(stderr, "refbroker witness: ", log.LstdFlags|log.Lmicroseconds).Printf
	socks, err := openSockets(map[string]string{"--listen": *listen, "--admin": *adminAddr})
	if err != nil {
		fmt.Fprintf(stderr, "refbroker witness: %v\n", err)
		return 2
	}
	ln, err := socks.listen(*listen)
	if err != nil {
		logf("startup failed: --listen %s: %v", *listen, err)
		return 2
	}
	w := replication.NewWitness(*ttl, logf)
	if *adminAddr != "" {
		aln, err := socks.listen(*adminAddr)
		if err != nil {
			ln.Close()
			logf("startup failed: --admin %s: %v", *adminAddr, err)
			return 2
		}
		mux := http.NewServeMux()
		ok := func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "ok\n") }
		mux.HandleFunc("/healthz", ok)
		mux.HandleFunc("/readyz", ok)
		mux.HandleFunc("/status", func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			json.NewEncoder(rw).Encode(map[string]any{"role": "witness", "witness": w.Status()})
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(aln)
		defer srv.Close()
		logf("admin on http://%s", aln.Addr())
	}
	logf("witness on %s (ttl %v)", ln.Addr(), *ttl)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- w.Serve(ln) }()
	select {
	case s := <-sigs:
		logf("%v: stopping", s)
		ln.Close()
		return 0
	case err := <-done:
		logf("FATAL: %v", err)
		return 1
	}
}
