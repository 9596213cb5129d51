// Command fakebroker serves package fakebroker's in-memory STOMP broker,
// with refbroker's flags, so harness tests can run a real child process
// without refbroker. It keeps nothing on disk: a crash loses every queued
// message.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/lossbench/lossbench/chaos/workload/fakebroker"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:61613", "STOMP listen address")
	admin := flag.String("admin", "", "admin HTTP address (/healthz, /readyz); none if empty")
	flag.String("store", "memory", "ignored: always memory")
	flag.String("data", "", "ignored")
	flag.String("fsync", "", "ignored")
	flag.Parse()

	b := fakebroker.New()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakebroker:", err)
		os.Exit(1)
	}
	if *admin != "" {
		aln, err := net.Listen("tcp", *admin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakebroker:", err)
			os.Exit(1)
		}
		ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", ok)
		mux.HandleFunc("/readyz", ok)
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
