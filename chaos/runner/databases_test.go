package runner

import (
	"context"
	"testing"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestDatabaseScenarios runs the suite's PostgreSQL scenarios end to end
// (a real server started by the local driver) and checks the outcomes
// the DR matrix promises: the JDBC store loses nothing when its database
// is killed, journaled JDBC loses the unflushed journal with its disk, and
// a lease standby takes over from a killed master, or from one cut off
// from its database, with nothing lost.
func TestDatabaseScenarios(t *testing.T) {
	if refErr != nil {
		t.Skipf("refbroker does not build: %v", refErr)
	}
	if err := dbserver.Available(dbserver.Postgres); err != nil {
		t.Skipf("skipping: %v", err)
	}
	for _, tc := range []struct {
		file        string
		lostPromise func(lost int) bool
		unavailable bool // the scenario must measure some unavailability (the fault hit)
	}{
		{"jdbc-postgres-db-lost", func(l int) bool { return l == 0 }, true},
		{"journaled-jdbc-journal-lost", func(l int) bool { return l > 0 }, false},
		{"jdbc-lease-master-killed", func(l int) bool { return l == 0 }, true}, // the takeover waits out the lease
		// The master's database link black-holed: it fails stop before its
		// lease can expire; the standby takes over once the server ends the
		// master's half-open transaction.
		{"jdbc-lease-master-cut-from-db", func(l int) bool { return l == 0 }, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			sc, err := scenario.Load("../../scenarios/suite/" + tc.file + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			o, _ := runScenario(t, context.Background(), sc, refBin)
			checkOutputs(t, o)
			r := o.Result
			t.Logf("%s: attempted %d acknowledged %d received %d lost %d duplicated %d unexpected %d unavailable %.1fs",
				tc.file, r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Duplicated, r.Unexpected, r.UnavailableS)
			if o.Skipped != "" {
				t.Fatalf("skipped: %s", o.Skipped)
			}
			if r.Acknowledged == 0 || !tc.lostPromise(r.Lost) || r.Unexpected != 0 {
				t.Errorf("lost %d of %d acknowledged, %d unexpected", r.Lost, r.Acknowledged, r.Unexpected)
			}
			if tc.unavailable && r.UnavailableS <= 0 {
				t.Errorf("unavailable %.1fs, want > 0 while the fault lasts", r.UnavailableS)
			}
			if !r.OK {
				t.Errorf("the scenario's expectations failed")
			}
		})
	}
}
