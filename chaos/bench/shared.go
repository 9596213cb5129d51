package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// startStandby starts the standby of a shared-storage target beside the
// master already serving on dir/data: its own folder dir/standby (log),
// the master's data directory, and waits until its /status says it
// stands by (it reads the lease file the master renews).
func (m *Matrix) startStandby(ctx context.Context, dir string, args []string) (*Broker, error) {
	sdir := filepath.Join(dir, "standby")
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, err
	}
	b, _, err := startBrokerOn(launch{}, m.BrokerBin, sdir, filepath.Join(dir, "data"), args)
	if err != nil {
		return nil, err
	}
	if err := waitRole(ctx, b, "standby", 30*time.Second); err != nil {
		b.Kill()
		return nil, fmt.Errorf("standby: %w: %s", err, osutil.Tail(b.log, 20))
	}
	return b, nil
}

// waitRole waits until b's /status shows the lease role role.
func waitRole(ctx context.Context, b *Broker, role string, within time.Duration) error {
	deadline := time.Now().Add(within)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-b.proc.done:
			return fmt.Errorf("exited (%v) before its lease role was %s", b.proc.err, role)
		default:
		}
		resp, err := http.Get("http://" + b.Admin + "/status")
		if err == nil {
			var s struct {
				Lease *struct {
					Role string `json:"role"`
				} `json:"lease"`
			}
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err == nil && s.Lease != nil {
				if s.Lease.Role == role {
					return nil
				}
				last = "role " + s.Lease.Role
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("lease role not %s after %v (%s)", role, within, last)
}
