package driver

import (
	"bytes"
	"context"
	"encoding/json"
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

// RefBrokerQueueDepth asks refbroker's admin endpoint at addr (GET
// /status) how many messages it holds on dest, ready plus in flight; ok
// is false when it does not answer or is not serving (a standby or a
// failed broker holds nothing it serves). Drivers implement Depths with
// it.
func RefBrokerQueueDepth(ctx context.Context, addr, dest string) (int, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	// The fields of refbroker's /status this needs (broker/admin).
	var st struct {
		Ready  bool `json:"ready"`
		Queues []struct {
			Name     string `json:"name"`
			Depth    int    `json:"depth"`
			Inflight int    `json:"inflight"`
		} `json:"queues"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || !st.Ready {
		return 0, false
	}
	for _, q := range st.Queues {
		if q.Name == dest {
			return q.Depth + q.Inflight, true
		}
	}
	return 0, true // no such queue: nothing held
}
