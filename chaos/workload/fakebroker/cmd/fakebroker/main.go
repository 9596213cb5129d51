// Command fakebroker serves package fakebroker's in-memory STOMP broker,
// with refbroker's flags, so harness tests can run a real child process
// without refbroker. It keeps nothing on disk: a crash loses every queued
// message.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/lossbench/lossbench/broker/listenfd"
	"github.com/lossbench/lossbench/chaos/workload/fakebroker"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:61613", "STOMP listen address, or fd:N: an inherited socket, as refbroker's")
	admin := flag.String("admin", "", "admin HTTP address (/healthz, /readyz), or fd:N; none if empty")
	flag.String("store", "memory", "ignored: always memory")
	flag.String("data", "", "ignored")
	flag.String("fsync", "", "ignored")
	stall := flag.Int("stall-after", 0, "the first subscription's ACKs after this many are ignored: a consumer that stalled (0: none)")
	flag.Parse()

	b := fakebroker.New()
	b.StallAfter = *stall
	ln, err := listenOn(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakebroker:", err)
		os.Exit(1)
	}
	if *admin != "" {
		aln, err := listenOn(*admin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakebroker:", err)
			os.Exit(1)
		}
		ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", ok)
		mux.HandleFunc("/readyz", ok)
		// /status in refbroker's shape, the fields the harness reads.
		mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
			st := struct {
				Ready  bool             `json:"ready"`
				Queues []map[string]any `json:"queues"`
			}{Ready: true, Queues: []map[string]any{}}
			for _, d := range b.Queues() {
				st.Queues = append(st.Queues, map[string]any{"name": d, "depth": b.Depth(d), "inflight": b.Inflight(d)})
			}
			_ = json.NewEncoder(w).Encode(st)
		})
		go func() { _ = http.Serve(aln, mux) }()
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		b.Close()
		os.Exit(0)
	}()
	fmt.Printf("fakebroker: listening on %s\n", ln.Addr())
	_ = b.Serve(ln)
}

// listenOn listens on addr, or on the inherited socket an fd:N address
// names (broker/listenfd, as refbroker does).
func listenOn(addr string) (net.Listener, error) {
	fd, ok, err := listenfd.Parse(addr)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return net.Listen("tcp", addr)
	}
	s, err := listenfd.Open(fd)
	if err != nil {
		return nil, err
	}
	return s.Listen()
}
