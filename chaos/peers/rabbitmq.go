package peers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RabbitMQServer is Debian's RabbitMQ server script (package
// rabbitmq-server), run directly rather than through /usr/sbin's wrapper,
// which switches to the rabbitmq user and the system's paths.
const RabbitMQServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// RabbitMQCtl is Debian's rabbitmqctl script, which joins a node to a
// cluster.
const RabbitMQCtl = "/usr/lib/rabbitmq/bin/rabbitmqctl"

// RabbitMQAvailable says why RabbitMQ cannot run here, or nil.
func RabbitMQAvailable() error {
	if !executable(RabbitMQServer) {
		return fmt.Errorf("peers: %s missing: install Debian's rabbitmq-server (chaos/bench/install-peers.sh --rabbitmq, as root)", RabbitMQServer)
	}
	return nil
}

// RabbitMQNode is what one RabbitMQ node of a scenario needs to know.
type RabbitMQNode struct {
	Name string
	// Listen is its AMQP address.
	Listen string
	// EPMDPort and DistPort are its own Erlang port mapper's and its
	// distribution port, free ports on 127.0.0.1 (on Host's interfaces
	// when it is set).
	EPMDPort, DistPort int
	// Host is the host part of its node name, a name the other nodes
	// resolve to this node's address (a container's hostname and network
	// alias): its port mapper and distribution port then listen on every
	// interface. "" is localhost, everything on 127.0.0.1.
	Host string
	// Dir is the node's working folder (configuration, logs, HOME);
	// Data its Mnesia and message stores (the node's data disk).
	Dir, Data string
	// Cookie is the Erlang cookie the nodes of one cluster share; ""
	// lets a lone node make its own.
	Cookie string
	// SharedEPMD: the nodes of a cluster register with one port mapper
	// on EPMDPort, which the caller runs (EPMDArgv) for as long as any
	// node may run; a node's own would die with the node and take the
	// others' registrations along. Without it the node runs its own.
	SharedEPMD bool
}

// NodeName is the node's Erlang node name (name@Host, name@localhost
// without Host).
func (r RabbitMQNode) NodeName() string {
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return strings.ReplaceAll(r.Name, "-", "_") + "@" + host
}

// EPMDArgv runs an Erlang port mapper on 127.0.0.1:port in the foreground.
func EPMDArgv(port int) []string {
	return []string{"epmd", "-address", "127.0.0.1", "-port", strconv.Itoa(port)}
}

// JoinArgv are the rabbitmqctl commands, run in order with Env, that make
// the running node r a member of seed's cluster (r's blank state is reset).
func (r RabbitMQNode) JoinArgv(seed string) [][]string {
	ctl := func(args ...string) []string {
		return append([]string{RabbitMQCtl, "-n", r.NodeName()}, args...)
	}
	return [][]string{ctl("stop_app"), ctl("join_cluster", seed), ctl("start_app")}
}

// JoinStepTimeout bounds each step of a node's joining its cluster
// (JoinArgv). Each step boots an Erlang VM for rabbitmqctl, and
// start_app boots the node's applications again: on a loaded machine
// (seen: 2 cores, load 30) one step took 80 s, and the three went past
// 3 minutes together.
const JoinStepTimeout = 3 * time.Minute

// Join makes the running node r a member of seed's cluster: run runs
// each of JoinArgv(seed) in order, with r's Env, within JoinStepTimeout,
// and returns its output (stdout and stderr), which an error shows.
func (r RabbitMQNode) Join(ctx context.Context, seed string, run func(ctx context.Context, argv []string) (string, error)) error {
	for _, argv := range r.JoinArgv(seed) {
		sctx, cancel := context.WithTimeout(ctx, JoinStepTimeout)
		out, err := run(sctx, argv)
		cancel()
		if err != nil {
			return fmt.Errorf("join rabbitmq cluster of %s: %s: %w\n%s", seed, strings.Join(argv, " "), err, strings.TrimSpace(out))
		}
	}
	return nil
}

// Write writes the node's configuration files into Dir.
func (r RabbitMQNode) Write() error {
	conf := fmt.Sprintf("listeners.tcp.1 = %s\nloopback_users = none\nlog.file = rabbit.log\nlog.console = false\n", r.Listen)
	if err := os.MkdirAll(filepath.Join(r.Dir, "home"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "rabbitmq.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("peers: rabbitmq config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "enabled_plugins"), []byte("[].\n"), 0o644); err != nil {
		return fmt.Errorf("peers: rabbitmq plugins: %w", err)
	}
	if r.Cookie != "" {
		// Erlang refuses a cookie file others can read; a 0400 file is
		// removed, not rewritten, on the next start.
		cookie := filepath.Join(r.Dir, "home", ".erlang.cookie")
		if err := os.Remove(cookie); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("peers: rabbitmq cookie: %w", err)
		}
		if err := os.WriteFile(cookie, []byte(r.Cookie), 0o400); err != nil {
			return fmt.Errorf("peers: rabbitmq cookie: %w", err)
		}
	}
	return nil
}

// Argv starts an Erlang port mapper of the node's own (on EPMDPort, so
// neither the system's 4369 nor a daemon outliving the run is involved)
// and then the server in its place, both in one process group: a kill of
// the group takes both. With SharedEPMD it starts the server alone.
func (r RabbitMQNode) Argv() []string {
	if r.SharedEPMD {
		return []string{RabbitMQServer}
	}
	addr := "-address 127.0.0.1 "
	if r.Host != "" {
		addr = ""
	}
	script := fmt.Sprintf("epmd %s-port %d & exec %s", addr, r.EPMDPort, RabbitMQServer)
	return []string{"/bin/sh", "-c", script}
}

// Env is the server's environment (added to the harness's own).
func (r RabbitMQNode) Env() []string {
	env := []string{
		"HOME=" + filepath.Join(r.Dir, "home"),
		"RABBITMQ_CONF_ENV_FILE=/dev/null",
		"RABBITMQ_NODENAME=" + r.NodeName(),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(r.Dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(r.Dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(r.Dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE=" + r.Data,
		"RABBITMQ_LOG_BASE=" + filepath.Join(r.Dir, "log"),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(r.DistPort),
		"ERL_EPMD_PORT=" + strconv.Itoa(r.EPMDPort),
	}
	if r.Host == "" {
		env = append(env, "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
			"ERL_EPMD_ADDRESS=127.0.0.1")
	}
	return env
}
