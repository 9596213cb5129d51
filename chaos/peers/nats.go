// Package peers starts brokers nobody here wrote as scenario nodes: it
// finds or builds their executables and writes their configurations, so
// a driver starts them like refbroker, on its addresses and data folder.
package peers

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The nats-server build: its Go module at a pinned version, built with
// go install (outside this module, which does not import the server).
const (
	NATSServerModule  = "github.com/nats-io/nats-server/v2"
	NATSServerVersion = "v2.15.2"
)

// NATSServerEnv names an explicit nats-server executable.
const NATSServerEnv = "LOSSBENCH_NATS_SERVER"

var natsOnce struct {
	sync.Mutex
	path string
}

// NATSServer returns the nats-server executable: $LOSSBENCH_NATS_SERVER if
// set (it must exist), else nats-server next to this program (make build
// puts it in bin/), else the one built into the user's cache folder,
// building it there with go install NATSServerModule@NATSServerVersion
// when missing (a minute or two the first time; the Go module proxy must
// be reachable).
func NATSServer(ctx context.Context) (string, error) {
	natsOnce.Lock()
	defer natsOnce.Unlock()
	if natsOnce.path != "" {
		return natsOnce.path, nil
	}
	p, err := findNATSServer(ctx)
	if err == nil {
		natsOnce.path = p
	}
	return p, err
}

func findNATSServer(ctx context.Context) (string, error) {
	if p := os.Getenv(NATSServerEnv); p != "" {
		if !executable(p) {
			return "", fmt.Errorf("peers: %s=%s: not an executable file", NATSServerEnv, p)
		}
		return filepath.Abs(p)
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "nats-server"); executable(p) {
			return p, nil
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "lossbench", "nats-server-"+NATSServerVersion)
	p := filepath.Join(dir, "nats-server")
	if executable(p) {
		return p, nil
	}
	if err := BuildNATSServer(ctx, dir); err != nil {
		return "", err
	}
	return p, nil
}

// BuildNATSServer builds nats-server NATSServerVersion into dir, with
// env added to the build's environment (CGO_ENABLED=0 for a static
// binary).
func BuildNATSServer(ctx context.Context, dir string, env ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("peers: build nats-server: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "install", NATSServerModule+"@"+NATSServerVersion)
	// GOFLAGS=-mod=mod (this module's setting) is refused outside a module.
	cmd.Env = append(append(os.Environ(), "GOBIN="+abs, "GOFLAGS="), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("peers: build nats-server (go install %s@%s; or set %s): %w\n%s",
			NATSServerModule, NATSServerVersion, NATSServerEnv, err, strings.TrimSpace(string(b)))
	}
	return nil
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// NATSNode is what one nats-server of a scenario needs to know.
type NATSNode struct {
	Name string
	// Listen is the client address, Monitor the HTTP monitoring address
	// (/healthz), Cluster the route address ("" for a single server).
	Listen, Monitor, Cluster string
	// Data is the JetStream store folder (the node's data disk).
	Data string
	// Sync is JetStream's sync_interval: "" (the server's default),
	// "always" or a duration.
	Sync string
	// Routes are the other servers' route addresses.
	Routes []string
}

// Config is n's nats-server configuration file.
func (n NATSNode) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: %q\nhttp: %q\n", n.Name, n.Listen, n.Monitor)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", n.Data)
	if n.Sync != "" {
		fmt.Fprintf(&b, "  sync_interval: %s\n", syncValue(n.Sync))
	}
	b.WriteString("}\n")
	if n.Cluster != "" {
		fmt.Fprintf(&b, "cluster {\n  name: lossbench\n  listen: %q\n  routes: [\n", n.Cluster)
		for _, r := range n.Routes {
			fmt.Fprintf(&b, "    %q\n", "nats-route://"+r)
		}
		b.WriteString("  ]\n}\n")
	}
	return b.String()
}

// syncValue is s as the config wants it: always bare, a duration quoted.
func syncValue(s string) string {
	if s == "always" {
		return s
	}
	return strconv.Quote(s)
}

// WriteConfig writes n's configuration to path.
func (n NATSNode) WriteConfig(path string) error {
	if err := os.WriteFile(path, []byte(n.Config()), 0o644); err != nil {
		return fmt.Errorf("peers: nats config: %w", err)
	}
	return nil
}

// NATSReady reports whether the server at monitor answers its health
// check for the server alone (js-server-only): JetStream is up. A
// cluster's first server is up before the others, without a meta leader;
// clients retry until the streams are reachable.
func NATSReady(ctx context.Context, hc *http.Client, monitor string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+monitor+"/healthz?js-server-only=true", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
