package bench

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/workload/jetstream"
)

// StartNATS starts nats-server (peers.NATSServer: bin/nats-server beside
// lossbench, or built from its module) with JetStream's store under dir,
// its client port and its monitoring port free ports on 127.0.0.1, and
// sync, JetStream's sync_interval ("": the server's default, 2 minutes;
// "always"), the same configuration a scenario's node of kind nats gets.
// The bench speaks NATS to it (jetstream.Protocol, one replica): a send
// is a publish confirmed by its PubAck, the consumer a durable pull
// consumer acknowledging each message. It waits until the server's
// JetStream health check passes (90 s at most).
//
// On error the partial Peer is returned with the error so the caller can
// Stop it.
func StartNATS(ctx context.Context, dir, sync string) (*Peer, error) {
	bin, err := peers.NATSServer(ctx)
	if err != nil {
		return nil, err
	}
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(base, "jetstream")
	if err := mkdirs(data); err != nil {
		return nil, err
	}
	listen, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	monitor, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(base, "nats.conf")
	if err := (peers.NATSNode{Name: "bench", Listen: listen, Monitor: monitor, Data: data, Sync: sync}).WriteConfig(conf); err != nil {
		return nil, err
	}
	console := filepath.Join(base, "console.log")
	hc := &http.Client{Timeout: time.Second}
	p := &Peer{
		Kind: PeerNATS, STOMP: listen, Dir: base, Protocol: jetstream.Protocol{Replicas: 1},
		ready: func(ctx context.Context) bool { return peers.NATSReady(ctx, hc, monitor) },
		logs:  []string{console},
		data:  []string{data},
	}
	if p.main, err = startChild("nats-server", base, console, os.Environ(), bin, "-c", conf); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, peerStartTimeout); err != nil {
		return p, err
	}
	return p, nil
}
