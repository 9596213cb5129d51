package driver

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// RefBrokerReady asks refbroker's admin endpoint at addr whether the
// broker is ready: /readyz answers 200, or 503 from a lease standby behind
// a live master (it serves once it takes over). One that sees no holder
// yet is about to take the lease and is not ready: waiting for it makes
// the first node started the master. Every driver waits for a started
// refbroker with it.
func RefBrokerReady(ctx context.Context, hc *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return bytes.HasPrefix(body, []byte("standby")) && !bytes.Contains(body, []byte(`held by ""`))
	}
	return resp.StatusCode == http.StatusOK
}
