package local

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/listenfd/listenfdtest"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/peers"
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
// address a listener of the test holds (another process that took the
// port between the pick and the broker's start); later picks are free.
func takeFirstPorts(t *testing.T, ip string, taken int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	freeAddr = func(ip string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n <= taken {
			return l.Addr().String(), nil
		}
		return osutil.FreeAddr(ip)
	}
	t.Cleanup(func() { freeAddr = osutil.FreeAddr })
	return l
}

// natsSite is oneSite with a nats-server node, which binds its own ports.
func natsSite(t *testing.T) (scenario.Topology, func(*Options)) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: a nats-server")
	}
	bin, err := peers.NATSServer(context.Background())
	if err != nil {
		t.Skipf("no nats-server: %v", err)
	}
	topo := oneSite()
	topo.Nodes[0].Broker = scenario.Broker{Kind: scenario.NATS, Store: "jetstream"}
	return topo, func(o *Options) { o.NATSServerBin = bin }
}

// TestStartMovesOffTakenPort: a broker that binds its own ports (nats)
// and finds its client port taken before its first start is started
// again on new ports; clients reach it through their link, and the
// failed start is not reported as the broker's exit.
func TestStartMovesOffTakenPort(t *testing.T) {
	topo, withNATS := natsSite(t)
	taken := takeFirstPorts(t, SiteIP(0, 0), 1)
	var logs []string
	var mu sync.Mutex
	d := newDriverWith(t, topo, func(o *Options) {
		withNATS(o)
		o.Log = func(format string, args ...any) {
			t.Logf(format, args...)
			mu.Lock()
			logs = append(logs, format)
			mu.Unlock()
		}
	})
	if got, _ := d.BrokerAddr("a1"); got != taken.Addr().String() {
		t.Fatalf("a1 listens on %s, want the taken %s", got, taken.Addr())
	}
	if err := d.StartAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.BrokerAddr("a1"); got == taken.Addr().String() {
		t.Fatalf("a1 still on the taken port %s", got)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial through the clients' link: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if line, err := readLine(c); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("through the clients' link: %q, %v; want nats-server's INFO", line, err)
	}
	c.Close()
	if ex := d.Exits(); len(ex) != 0 {
		t.Fatalf("exits %+v, want none", ex)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(logs, "\n"), "address already in use") {
		t.Fatalf("the move to new ports is not logged: %q", logs)
	}
}

// readLine reads up to a newline.
func readLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// TestStartGivesUpOnTakenPorts: the retries are bounded; a port that
// stays taken fails the start with the broker's log.
func TestStartGivesUpOnTakenPorts(t *testing.T) {
	topo, withNATS := natsSite(t)
	takeFirstPorts(t, SiteIP(0, 0), 1<<30)
	d := newDriverWith(t, topo, withNATS)
	err := d.StartAll(context.Background())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
		t.Fatalf("error %v, want the broker's bind failure", err)
	}
	if n := len(d.Exits()); n != 1 {
		t.Fatalf("%d exits, want the last start's only", n)
	}
}
