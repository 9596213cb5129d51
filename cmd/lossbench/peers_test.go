package main

import (
	"context"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/runner"
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
	sc, err := scenario.Load("../../scenarios/peers/nats-default-power-cut.yaml")
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
	t.Logf("acknowledged %d, lost %d, duplicated %d, unavailable %.1f s", r.Acknowledged, r.Lost, r.Duplicated, r.UnavailableS)
	if r.Acknowledged == 0 || r.Lost == 0 {
		t.Fatalf("acknowledged %d, lost %d: the power cut of a JetStream node that never fsynced must lose acknowledged messages", r.Acknowledged, r.Lost)
	}
}
