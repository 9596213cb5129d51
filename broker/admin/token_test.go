package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequireToken: with a token, /metrics, /status and /readyz answer 401
// without it or with a wrong one, and serve with it; /healthz stays open.
func TestRequireToken(t *testing.T) {
	srv := httptest.NewServer(RequireToken(Handler(nil, Options{Version: "test"}), "s3cret"))
	defer srv.Close()
	do := func(path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
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
	for _, path := range []string{"/metrics", "/status", "/readyz"} {
		for _, auth := range []string{"", "Bearer wrong", "s3cret", "Bearer s3cret2"} {
			if code := do(path, auth); code != http.StatusUnauthorized {
				t.Errorf("%s with %q: %d, want 401", path, auth, code)
			}
		}
	}
	if code := do("/metrics", "Bearer s3cret"); code != 200 {
		t.Errorf("/metrics with the token: %d", code)
	}
	if code := do("/status", "Bearer s3cret"); code != 200 {
		t.Errorf("/status with the token: %d", code)
	}
	if code := do("/readyz", "Bearer s3cret"); code != 503 { // no broker: not ready, but authorized
		t.Errorf("/readyz with the token: %d, want 503", code)
	}
	if code := do("/healthz", ""); code != 200 {
		t.Errorf("/healthz without the token: %d, want 200", code)
	}
}
