package server

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoginThrottle: past MaxLoginFailures failed logins from an address,
// its CONNECTs are refused unchecked, even with good credentials, and
// unlogged; after the window they are checked again.
func TestLoginThrottle(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, format)
		mu.Unlock()
	}
	b, addr := startBroker(t, nil, Options{Login: "u", Passcode: "p", MaxLoginFailures: 3, Logf: logf})
	clock := time.Now()
	b.logins.mu.Lock()
	b.logins.now = func() time.Time { return clock }
	b.logins.mu.Unlock()
	connect := func(pass string) string {
		r := rawDial(t, addr)
		r.write("CONNECT\naccept-version:1.2\nlogin:u\npasscode:" + pass + "\n\n\x00")
		f := r.read()
		if f == nil {
			t.Fatal("closed without an answer")
		}
		if f.Command == "ERROR" {
			return f.Get("message")
		}
		return f.Command
	}
	for range 3 {
		if got := connect("wrong"); got != "access refused" {
			t.Fatalf("got %q", got)
		}
	}
	for range 20 {
		if got := connect("p"); got != "too many failed logins" {
			t.Fatalf("got %q, want the address throttled", got)
		}
	}
	mu.Lock()
	logged := 0
	for _, l := range lines {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "login") {
			logged++
		}
	}
	mu.Unlock()
	if logged > 4 {
		t.Fatalf("%d log lines for 23 refused CONNECTs, want at most 4 (3 failures, 1 throttle notice)", logged)
	}
	b.logins.mu.Lock()
	clock = clock.Add(loginWindow)
	b.logins.mu.Unlock()
	if got := connect("p"); got != "CONNECTED" {
		t.Fatalf("got %q after the window, want CONNECTED", got)
	}
}
