package local

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// takeFirstPorts makes the next taken picks of node ports return an
// address a listener of the test holds (another process that took the
// port between the pick and the broker's start); later picks are free.
func takeFirstPorts(t *testing.T, taken int) net.Listener {
	t.Helper()
	held, err := net.Listen("tcp", SiteIP(0, 0)+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	var mu sync.Mutex
	n := 0
	freeAddr = func(ip string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n <= taken {
			return held.Addr().String(), nil
		}
		return osutil.FreeAddr(ip)
	}
	t.Cleanup(func() { freeAddr = osutil.FreeAddr })
	return held
}

// TestStartMovesOffTakenPort: a node whose STOMP port was taken before
// its first start is started again on new ports; clients reach it through
// their link, and the failed start is not reported as the broker's exit.
func TestStartMovesOffTakenPort(t *testing.T) {
	held := takeFirstPorts(t, 1)
	var logs []string
	var mu sync.Mutex
	d := newDriverWith(t, oneSite(), func(o *Options) {
		o.Log = func(format string, args ...any) {
			t.Logf(format, args...)
			mu.Lock()
			logs = append(logs, format)
			mu.Unlock()
		}
	})
	if got, _ := d.BrokerAddr("a1"); got != held.Addr().String() {
		t.Fatalf("a1 listens on %s, want the taken %s", got, held.Addr())
	}
	if err := d.StartAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.BrokerAddr("a1"); got == held.Addr().String() {
		t.Fatalf("a1 still on the taken port %s", got)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 10*time.Second); err != nil {
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
	d := newDriver(t, oneSite())
	err := d.StartAll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %v, want the broker's bind failure", err)
	}
	if n := len(d.Exits()); n != 1 {
		t.Fatalf("%d exits, want the last start's only", n)
	}
}
