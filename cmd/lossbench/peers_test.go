package main

import (
	"context"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/runner"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestNATSDefaultSyncPowerCutLoses runs scenarios/peers/nats-default-power-cut
// on a real nats-server: JetStream acknowledges before it fsyncs (its
// default sync_interval is 2 minutes), so a power cut of its node must
// lose acknowledged messages, and the checker must see it. A harness that
// stopped seeing this known loss fails here (and at the gate, where the
// cell's lost is pinned at ">0").
func TestNATSDefaultSyncPowerCutLoses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a 30 s scenario on a real nats-server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := peers.NATSServer(ctx); err != nil {
		t.Skipf("no nats-server: %v", err)
	}
	r := runPeerScenario(ctx, t, "nats-default-power-cut.yaml")
	if r.Acknowledged == 0 || r.Lost == 0 {
		t.Fatalf("acknowledged %d, lost %d: the power cut of a JetStream node that never fsynced must lose acknowledged messages", r.Acknowledged, r.Lost)
	}
}

// runPeerScenario runs scenarios/peers/file on the local driver and
// returns its result; a scenario the machine cannot measure is skipped
// saying why.
func runPeerScenario(ctx context.Context, t *testing.T, file string) *result.Result {
	t.Helper()
	sc, err := scenario.Load("../../scenarios/peers/" + file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runner.Run(ctx, sc, runner.Options{Out: t.TempDir(), RunID: "t", Driver: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Skipped != "" {
		t.Skipf("not measured here: %s", out.Skipped)
	}
	r := out.Result
	t.Logf("%s: acknowledged %d, lost %d, duplicated %d, unavailable %.1f s", file, r.Acknowledged, r.Lost, r.Duplicated, r.UnavailableS)
	return r
}

// TestRabbitMQClassicKill9 runs scenarios/peers/rabbitmq-classic-kill9 on
// Debian's RabbitMQ (skipped, saying why, where it is not installed): a
// publisher confirm of a persistent message on a durable queue survives
// kill -9.
func TestRabbitMQClassicKill9(t *testing.T) {
	if err := peers.RabbitMQAvailable(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := runPeerScenario(ctx, t, "rabbitmq-classic-kill9.yaml")
	if r.Acknowledged == 0 || r.Lost != 0 {
		t.Fatalf("acknowledged %d, lost %d: want messages confirmed and none lost to kill -9", r.Acknowledged, r.Lost)
	}
}

// TestActiveMQAlwaysKill9 runs scenarios/peers/activemq-always-kill9 on
// Debian's ActiveMQ (skipped, saying why, where it is not installed):
// KahaDB with journalDiskSyncStrategy=always loses nothing to kill -9.
func TestActiveMQAlwaysKill9(t *testing.T) {
	if err := peers.ActiveMQAvailable(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := runPeerScenario(ctx, t, "activemq-always-kill9.yaml")
	if r.Acknowledged == 0 || r.Lost != 0 {
		t.Fatalf("acknowledged %d, lost %d: want messages acknowledged and none lost to kill -9", r.Acknowledged, r.Lost)
	}
}
