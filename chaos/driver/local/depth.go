package local

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// QueueDepth asks a refbroker node's admin endpoint (GET /status, its
// queues' depth and inflight); a command broker's rules are its own, so
// ok is false for it, as for a node that does not answer.
func (d *Driver) QueueDepth(ctx context.Context, name, dest string) (int, bool) {
	n, err := d.node(name)
	if err != nil || n.spec.Broker.Kind != scenario.RefBroker || n.admin == "" {
		return 0, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.admin+"/status", nil)
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
		return 0, false // a standby or a failed broker holds nothing it serves
	}
	for _, q := range st.Queues {
		if q.Name == dest {
			return q.Depth + q.Inflight, true
		}
	}
	return 0, true // no such queue: nothing held
}
