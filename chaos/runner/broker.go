package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// RefBrokerPackage is the import path go build uses for refbroker.
const RefBrokerPackage = "github.com/lossbench/lossbench/cmd/refbroker"

// NeedsRefBroker reports whether any node of the scenarios runs refbroker.
func NeedsRefBroker(scs []*scenario.Scenario) bool {
	for _, sc := range scs {
		for _, n := range sc.Topology.Nodes {
			if n.Broker.Kind == scenario.RefBroker {
				return true
			}
		}
	}
	return false
}

// FindBroker returns the refbroker executable: explicit if given (it must
// exist), else a refbroker next to this program (make build puts both in
// bin/), else one built with go build into dir/bin. Errors wrap
// ErrEnvironment and say what to do.
func FindBroker(ctx context.Context, explicit, dir string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("--broker-bin %s: %w: %w", explicit, ErrEnvironment, err)
		}
		return filepath.Abs(p)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "refbroker")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	out := filepath.Join(dir, "bin", "refbroker")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build refbroker: %w: %w", ErrEnvironment, err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", abs, RefBrokerPackage)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build refbroker (go build %s, run inside the lossbench module, or pass --broker-bin): %w: %v\n%s",
			RefBrokerPackage, ErrEnvironment, err, strings.TrimSpace(string(b)))
	}
	return abs, nil
}
