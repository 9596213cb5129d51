package local

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/listenfd"
	"github.com/lossbench/lossbench/broker/listenfd/listenfdtest"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestRefBrokerInheritsItsSockets: a refbroker node's addresses are the
// driver's from the layout on, taken by nothing else before the first
// start or between runs; a killed node refuses its clients (the driver
// stops the socket it keeps from listening) and a restart serves on the
// very same addresses.
func TestRefBrokerInheritsItsSockets(t *testing.T) {
	d := newDriver(t, oneSite())
	n := d.nodes["a1"]
	listen, admin, repl := n.listen, n.admin, n.repl
	for _, a := range []string{listen, admin, repl} {
		listenfdtest.Held(t, a, "laid out, not started")
		listenfdtest.Refused(t, a, "laid out, not started")
	}
	ctx := context.Background()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 30*time.Second); err != nil {
		t.Fatalf("send through the clients' link: %v", err)
	}
	listenfdtest.Refused(t, repl, "a refbroker without replication")
	for run := range 2 {
		if err := d.Kill(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{listen, admin} {
			listenfdtest.Refused(t, a, "killed")
			listenfdtest.Held(t, a, "killed")
		}
		if err := d.Start(ctx, "a1"); err != nil {
			t.Fatalf("restart %d: %v", run, err)
		}
		if n.listen != listen || n.admin != admin {
			t.Fatalf("restart %d moved the node: %s %s, want %s %s", run, n.listen, n.admin, listen, admin)
		}
		if _, err := sendOnce(listen, 30*time.Second); err != nil {
			t.Fatalf("restart %d: send to the node's own address: %v", run, err)
		}
	}
	if ex := d.Exits(); len(ex) != 2 || !ex[0].ByHarness || ex[0].Signal != "killed" {
		t.Fatalf("exits %+v, want the two kills", ex)
	}
}

// takeFirstPorts makes the next taken picks of node ports return an
// address a socket of the test holds (another process that took the port
// between the pick and the broker's start); later picks are free. The
// socket is bound, not listening, so that a broker that is ready when its
// port accepts is not taken for ready on it.
func takeFirstPorts(t *testing.T, taken int) string {
	t.Helper()
	f, addr, err := listenfd.Bind(SiteIP(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var mu sync.Mutex
	n := 0
	freeAddr = func(ip string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n <= taken {
			return addr, nil
		}
		return osutil.FreeAddr(ip)
	}
	t.Cleanup(func() { freeAddr = osutil.FreeAddr })
	return addr
}

// ownPortsSite is oneSite with a broker that binds its own ports: a
// command broker, the fakebroker on {listen} and {admin}.
func ownPortsSite() scenario.Topology {
	topo := oneSite()
	topo.Nodes[0].Broker = scenario.Broker{Kind: scenario.Command, Command: []string{brokerBin, "--listen", "{listen}", "--admin", "{admin}"}}
	return topo
}

// TestStartMovesOffTakenPort: a broker that binds its own ports (a
// command broker) and finds its client port taken before its first start
// is started again on new ports; clients reach it through their link,
// and the failed start is not reported as the broker's exit.
func TestStartMovesOffTakenPort(t *testing.T) {
	taken := takeFirstPorts(t, 1)
	var logs []string
	var mu sync.Mutex
	d := newDriverWith(t, ownPortsSite(), func(o *Options) {
		o.Log = func(format string, args ...any) {
			t.Logf(format, args...)
			mu.Lock()
			logs = append(logs, format)
			mu.Unlock()
		}
	})
	if got, _ := d.BrokerAddr("a1"); got != taken {
		t.Fatalf("a1 listens on %s, want the taken %s", got, taken)
	}
	if err := d.StartAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.BrokerAddr("a1"); got == taken {
		t.Fatalf("a1 still on the taken port %s", got)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 30*time.Second); err != nil {
		t.Fatalf("send through the clients' link: %v", err)
	}
	if ex := d.Exits(); len(ex) != 0 {
		t.Fatalf("exits %+v, want none", ex)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(logs, "\n"), "address already in use") {
		t.Fatalf("the move to new ports is not logged: %q", logs)
	}
}

// TestStartGivesUpOnTakenPorts: the retries are bounded; a port that
// stays taken fails the start with the broker's log.
func TestStartGivesUpOnTakenPorts(t *testing.T) {
	takeFirstPorts(t, 1<<30)
	d := newDriver(t, ownPortsSite())
	err := d.StartAll(context.Background())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
		t.Fatalf("error %v, want the broker's bind failure", err)
	}
	if n := len(d.Exits()); n != 1 {
		t.Fatalf("%d exits, want the last start's only", n)
	}
}
