package drivertest

import (
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
)

// testExits: a driver that reports exits (driver.ExitReporter) records a
// kill and a stop as ended by the harness, the kill as signal "killed"
// with status -1; a driver that also starts nodes with extra arguments
// (driver.ArgsStarter) and runs real brokers records a broker that
// refuses an unknown flag as ending by itself with a positive status,
// and the next plain Start drops the extra arguments again.
func testExits(t *testing.T, s Setup, d driver.Driver) {
	er, ok := d.(driver.ExitReporter)
	if !ok {
		t.Skipf("the %s driver reports no exits", d.Info().Name)
	}
	ctx := ctxT(t)
	start(t, d, "a1")
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	start(t, d, "a1")
	if err := d.Stop(ctx, "a1"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	want := 2
	as, args := d.(driver.ArgsStarter)
	if args && s.Serves {
		if err := as.StartWithArgs(ctx, "a1", []string{"--no-such-flag"}); err == nil {
			t.Fatal("StartWithArgs(a1, --no-such-flag) started a broker given an unknown flag")
		}
		want = 3
	}
	var exits []driver.Exit
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if exits = er.Exits(); len(exits) >= want {
			break
		}
	}
	if len(exits) != want {
		t.Fatalf("exits %+v, want %d", exits, want)
	}
	if e := exits[0]; e.Node != "a1" || !e.ByHarness || e.Signal != "killed" || e.Status != -1 {
		t.Errorf("kill: %+v, want a1 by the harness, signal killed, status -1", e)
	}
	if e := exits[1]; e.Node != "a1" || !e.ByHarness {
		t.Errorf("stop: %+v, want a1 by the harness", e)
	}
	if want == 3 {
		if e := exits[2]; e.Node != "a1" || e.ByHarness || e.Status <= 0 || e.Signal != "" {
			t.Errorf("refused start: %+v, want a1 ending by itself with a positive status", e)
		}
		start(t, d, "a1") // without the extra arguments: it starts
		reachable(t, d, "a1", true)
	}
}
