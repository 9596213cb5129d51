package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/dbserver"
	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/drivertest"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestConformance runs the driver suite on real refbroker processes, with
// a PostgreSQL server when it is installed.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "refbroker")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/lossbench/lossbench/cmd/refbroker").CombinedOutput(); err != nil {
		t.Fatalf("build refbroker: %v\n%s", err, b)
	}
	s := drivertest.Setup{Serves: true,
		New: func(t *testing.T, cfg driver.Config) (driver.Driver, error) {
			cfg.BrokerBin = bin
			return Open(t.Context(), cfg)
		},
		Leftovers: func(t *testing.T, cfg driver.Config) []string {
			var left []string
			ents, _ := os.ReadDir(filepath.Join(cfg.StateDir, StateSubdir))
			for _, e := range ents {
				left = append(left, "state file "+e.Name())
			}
			// No process works in the run folder any more.
			dirs, _ := filepath.Glob("/proc/[0-9]*/cwd")
			for _, p := range dirs {
				if cwd, err := os.Readlink(p); err == nil && strings.HasPrefix(cwd, cfg.Dir+"/") {
					left = append(left, "process "+p+" in "+cwd)
				}
			}
			return left
		}}
	if dbserver.Available(dbserver.Postgres) == nil {
		s.Database = scenario.Postgres
	}
	drivertest.Run(t, s)
}
