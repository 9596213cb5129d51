package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// ReplicatedTargets are refbroker's replicated master/slave pairs
// (--replication-listen, min-replicas 1), each ack mode with the link
// between the two nodes at a round trip of 0, 1 and 5 ms (latency on the
// replication link's toxiproxy, half the round trip each way); and
// replicated-async, min-replicas 0 (the master acknowledges after its own
// fdatasync and streams to the replica meanwhile).
func ReplicatedTargets() []Target {
	var out []Target
	for _, ack := range []string{"received", "fsynced"} {
		for _, rtt := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
			name := "replicated-" + ack
			if rtt > 0 {
				name += fmt.Sprintf("-rtt%dms", rtt.Milliseconds())
			}
			out = append(out, Target{Name: name, Args: []string{"--store", "journal", "--fsync", "batch", "--replica-ack", ack},
				Replica: ack, RTT: rtt,
				About: fmt.Sprintf("two refbrokers, min-replicas 1, --replica-ack %s, replication link round trip %v", ack, rtt)})
		}
	}
	return append(out, Target{Name: "replicated-async", Args: []string{"--store", "journal", "--fsync", "batch", "--min-replicas", "0"},
		Replica: "fsynced", About: "two refbrokers, min-replicas 0 (asynchronous), replication link round trip 0"})
}

// replicatedCell measures a replicated pair: master a (loaded) and
// replica b, each on its own data directory, the replication link through
// toxiproxy (startLink).
func (m *Matrix) replicatedCell(ctx context.Context, tg Target, dir string, producers, size int) (Figures, error) {
	replA, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return Figures{}, err
	}
	replB, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return Figures{}, err
	}
	toA, err := startLink("b->a", replA, tg.RTT)
	if err != nil {
		return Figures{}, err
	}
	defer toA.Stop()
	toB, err := startLink("a->b", replB, tg.RTT)
	if err != nil {
		return Figures{}, err
	}
	defer toB.Stop()
	timings := []string{"--lease-ttl", "1s", "--lease-renew", "200ms", "--lease-margin", "200ms"}
	argsA := append(append(append([]string(nil), tg.Args...), timings...), "--lease-owner", "a", "--replication-listen", replA, "--peer", toB.Listen)
	argsB := append(append(append([]string(nil), tg.Args...), timings...), "--lease-owner", "b", "--replication-listen", replB, "--peer", toA.Listen)
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{dirA, dirB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Figures{}, err
		}
		defer os.RemoveAll(filepath.Join(d, "data"))
	}
	a, err := StartBroker(ctx, m.BrokerBin, dirA, argsA)
	if err != nil {
		return Figures{}, err
	}
	defer a.Kill()
	// The replica is not ready (it serves no clients): the master's
	// in-sync count says when it is there.
	b, _, err := startBroker(m.BrokerBin, dirB, argsB)
	if err != nil {
		return Figures{}, err
	}
	defer b.Kill()
	if err := waitInSync(ctx, a.Admin, 30*time.Second); err != nil {
		return Figures{}, fmt.Errorf("%s: %w: %s", tg.Name, err, osutil.Tail(b.log, 20))
	}
	f, runErr := Run(ctx, Load{
		Addr: a.STOMP, Dest: "/queue/bench", Producers: producers, Size: size,
		Warmup: m.Warmup, Duration: m.Duration, Persistent: true,
	})
	if mets, err := a.SaveMetrics(filepath.Join(dir, "metrics.prom")); err == nil {
		f.MsgsPerSync = perSync(mets)
	}
	if err := a.Stop(); err != nil && runErr == nil {
		runErr = err
	}
	_ = b.Stop()
	return f, runErr
}

// waitInSync waits until the master at admin has an in-sync replica.
func waitInSync(ctx context.Context, admin string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/status")
		if err == nil {
			var s struct {
				Replication struct {
					InSync int `json:"in_sync"`
				} `json:"replication"`
			}
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err == nil && s.Replication.InSync > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no replica in sync after %v", within)
}

// startLink starts the replication link to upstream, as the harness's
// links are (chaos/driver: an in-process toxiproxy proxy), on a free
// loopback port, with latency toxics adding up to rtt: half each way,
// rounded to toxiproxy's whole milliseconds (1 ms: 0 one way, 1 back).
func startLink(name, upstream string, rtt time.Duration) (*toxiproxy.Proxy, error) {
	if rtt%time.Millisecond != 0 || rtt < 0 {
		return nil, fmt.Errorf("link %s: round trip %v: expected whole milliseconds (toxiproxy's latency unit)", name, rtt)
	}
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(tp, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	ms := rtt.Milliseconds()
	for stream, lat := range map[string]int64{"upstream": ms / 2, "downstream": ms - ms/2} {
		if lat == 0 {
			continue
		}
		js := fmt.Sprintf(`{"name":"rtt-%s","type":"latency","stream":%q,"toxicity":1,"attributes":{"latency":%d}}`, stream, stream, lat)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			p.Stop()
			return nil, fmt.Errorf("link %s: latency %d ms %s: %w", name, lat, stream, err)
		}
	}
	return p, nil
}
