package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdminToken: with --admin-token, /metrics answers 401 without the
// token and 200 with it; /healthz stays open.
func TestAdminToken(t *testing.T) {
	l := startAdmin(t, "tok", "--store", "memory", "--admin-token", "s3cret")
	get := func(path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+l.admin+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	if code := get("/metrics", "Bearer s3cret"); code != 200 {
		t.Errorf("/metrics with the token: %d, want 200", code)
	}
	if code := get("/healthz", ""); code != 200 {
		t.Errorf("/healthz without the token: %d, want 200", code)
	}
	if strings.Contains(l.stderr.String(), "WARNING") {
		t.Errorf("a loopback broker warns:\n%s", l.stderr)
	}
}

// TestExposedListenWarns: a STOMP address that is not loopback, without
// --login, is warned about at start. 192.0.2.1 (TEST-NET-1) is on no
// interface here, so the broker then exits 2 without binding anything.
func TestExposedListenWarns(t *testing.T) {
	p := launch(t, "--listen", "192.0.2.1:61613", "--admin=", "--store", "memory")
	if code := p.exitCode(); code != 2 {
		t.Fatalf("exit %d, want 2 (address not available)", code)
	}
	if want := "WARNING: --listen 192.0.2.1:61613 is not a loopback address and no --login is set"; !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, p.stderr)
	}
}
