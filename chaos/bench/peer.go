package bench

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/workload"
)

// The peer brokers the bench measures beside refbroker, with the same
// client and workload. They come from Debian's packages; install-peers.sh
// beside this file installs them.
const (
	PeerActiveMQ = "activemq"
	PeerRabbitMQ = "rabbitmq"
	// PeerNATS is nats-server built from its Go module
	// (peers.NATSServer), not a Debian package.
	PeerNATS = "nats"
)

// ErrPeerNotInstalled is wrapped by PeerAvailable's error.
var ErrPeerNotInstalled = errors.New("bench: peer broker not installed")

// Bounds of a peer broker's life: a JVM or an Erlang node takes seconds to
// start on two busy cores, and a JDBC store's shutdown waits for its pool.
const (
	peerStartTimeout = 90 * time.Second
	peerStopTimeout  = 30 * time.Second
)

// PeerTargets are the other brokers measured beside refbroker in the same
// run: ActiveMQ Classic with KahaDB at its defaults, with
// concurrentStoreAndDispatchQueues=false, and with its JDBC store on the
// bench's own PostgreSQL; RabbitMQ with a durable queue over its STOMP
// plugin. They are not in DefaultTargets: they need packages a machine may
// not have (PeerAvailable), and asking for one that is missing is an error.
func PeerTargets() []Target {
	return []Target{
		{Name: "activemq-kahadb", Peer: PeerActiveMQ, PeerConfig: "kahadb",
			About: "ActiveMQ Classic, KahaDB at its defaults (fsync per write batch)"},
		{Name: "activemq-kahadb-nocsd", Peer: PeerActiveMQ, PeerConfig: "kahadb-nocsd",
			About: "the same with concurrentStoreAndDispatchQueues=false"},
		{Name: "activemq-jdbc-postgres", Peer: PeerActiveMQ, PeerConfig: "jdbc", DB: "postgres",
			About: "ActiveMQ's JDBC store on the bench's PostgreSQL, a fresh database per cell"},
		{Name: "rabbitmq", Peer: PeerRabbitMQ,
			About: "RabbitMQ, durable queue over the STOMP plugin (durable:true, auto-delete:false)"},
		{Name: "rabbitmq-amqp", Peer: PeerRabbitMQ, PeerConfig: "classic",
			About: "RabbitMQ, durable classic queue over AMQP 0-9-1, publisher confirms"},
		{Name: "rabbitmq-quorum", Peer: PeerRabbitMQ, PeerConfig: "quorum",
			About: "RabbitMQ, quorum queue (one node) over AMQP 0-9-1, publisher confirms"},
		{Name: "nats-jetstream", Peer: PeerNATS,
			About: "NATS JetStream, one server, file stream, its default sync_interval (2 min); PubAck per publish"},
		{Name: "nats-jetstream-always", Peer: PeerNATS, PeerConfig: "always",
			About: "the same with sync_interval: always (an fsync before each PubAck)"},
	}
}

// Available reports whether the target can run on this machine: nil for
// refbroker's targets (their databases are checked when started), and for
// a peer whether its packages are installed, the error naming them and the
// command that installs them.
func (t Target) Available() error {
	if t.Peer == "" {
		return nil
	}
	return PeerAvailable(t.Peer)
}

// PeerAvailable reports whether peer kind's packages are installed; the
// error names the missing packages and how to install them (a test skips
// with it).
func PeerAvailable(kind string) error {
	return peerAvailable(kind, func(path string) bool {
		if filepath.IsAbs(path) {
			_, err := os.Stat(path)
			return err == nil
		}
		_, err := exec.LookPath(path)
		return err == nil
	})
}

// peerAvailable is PeerAvailable with have telling whether a file (an
// absolute path) or a command (a name looked up in PATH) exists.
func peerAvailable(kind string, have func(string) bool) error {
	var missing []string
	need := func(path, pkg string) {
		if !have(path) {
			missing = append(missing, pkg)
		}
	}
	switch kind {
	case PeerActiveMQ:
		need(peers.ActiveMQJar, "activemq")
		need(peers.PostgresJDBCJar, "libpostgresql-jdbc-java")
		need(peers.CommonsDBCPJar, "libcommons-dbcp-java")
		need(peers.CommonsPoolJar, "libcommons-pool-java")
		if len(missing) == 0 {
			need("java", "default-jre-headless") // a dependency of activemq
		}
	case PeerRabbitMQ:
		need(peers.RabbitMQServer, "rabbitmq-server")
		if len(missing) == 0 {
			need(epmdBin, "erlang-base") // a dependency of rabbitmq-server
		}
	case PeerNATS:
		// Found or built (go install) when the target starts.
		return nil
	default:
		return fmt.Errorf("bench: unknown peer broker %q", kind)
	}
	if len(missing) == 0 {
		return nil
	}
	flag := ""
	if kind == PeerRabbitMQ {
		flag = " --rabbitmq"
	}
	return fmt.Errorf("%w: %s needs Debian's %s: run `apt-get install -y %s` as root (or chaos/bench/install-peers.sh%s; `make bench` does it)",
		ErrPeerNotInstalled, kind, strings.Join(missing, ", "), strings.Join(missing, " "), flag)
}

// PeerVersion is the installed Debian package version of peer kind, for
// the report ("" when dpkg does not know it).
func PeerVersion(kind string) string {
	pkg := kind
	switch kind {
	case PeerRabbitMQ:
		pkg = "rabbitmq-server"
	case PeerNATS:
		return peers.NATSServerModule + "@" + peers.NATSServerVersion
	}
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Peer is a peer broker running as a child process in its own process
// group, with helper processes it needs (RabbitMQ's epmd) stopped after
// it.
type Peer struct {
	// Kind is PeerActiveMQ, PeerRabbitMQ or PeerNATS.
	Kind string
	// STOMP is the broker's STOMP address, host:port on 127.0.0.1, or
	// with Protocol set, its address for that protocol.
	STOMP string
	// Protocol, when set, is the client protocol the bench speaks to the
	// peer instead of STOMP (NATS JetStream).
	Protocol workload.Protocol
	// ready, when set, tells whether the peer is ready instead of a STOMP
	// CONNECT.
	ready func(context.Context) bool
	// Dir holds the broker's configuration, data and logs.
	Dir string
	// Host is the CONNECT host header the broker needs (Load.Host).
	Host string
	// QueueHeaders are the SEND and SUBSCRIBE headers the broker's STOMP
	// dialect needs for a durable queue (Load.QueueHeaders).
	QueueHeaders map[string]string

	main    *child
	helpers []*child
	logs    []string // quoted, last lines each, when it fails
	data    []string // removed after the cell; logs and configuration stay
}

// child is one process the bench started: refbroker, a peer broker or
// one of its helpers.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited; err is then set
	err  error
}

// startChild starts argv with env (nil: this process's) in dir ("": the
// current one), its output appended to logPath, in a process group of its
// own (so stop can end its children too) and killed if this process dies
// first.
func startChild(name, dir, logPath string, env []string, argv ...string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

// alive reports whether the child has not exited.
func (c *child) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits up to bound, then SIGKILLs the process
// group. It reports an exit that was neither clean nor by the signal.
func (c *child) stop(bound time.Duration) error {
	pid := c.cmd.Process.Pid
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(bound):
		c.kill()
		return fmt.Errorf("bench: %s (pid %d) did not stop on SIGTERM within %s; killed", c.name, pid, bound)
	}
	// Whatever the group still holds (an Erlang port program, say) goes
	// with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	var ee *exec.ExitError
	if c.err != nil && errors.As(c.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
		// The JVM exits 143 (128+SIGTERM) after its shutdown hooks.
		if ee.ExitCode() == 128+int(syscall.SIGTERM) {
			return nil
		}
	}
	if c.err != nil {
		return fmt.Errorf("bench: %s exit: %w", c.name, c.err)
	}
	return nil
}

// kill SIGKILLs the child's process group and waits for the child.
func (c *child) kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	_ = c.cmd.Process.Kill()
	<-c.done
}

// waitReady waits until the peer answers a STOMP CONNECT on its STOMP
// address (or p.ready says it is ready), its process dies, ctx ends or
// timeout passes; the error quotes the peer's logs.
func (p *Peer) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if !p.main.alive() {
			return fmt.Errorf("bench: %s exited before %s answered (%v)%s", p.Kind, p.STOMP, p.main.err, p.logTails())
		}
		if p.ready != nil {
			last = errors.New("not ready")
			if p.ready(ctx) {
				return nil
			}
		} else if last = stompPing(p.STOMP, p.Host); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: %s not answering after %s (last: %v)%s", p.Kind, p.STOMP, timeout, last, p.logTails())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stompPing connects and disconnects once, bounded by a few seconds.
func stompPing(addr, host string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	opts := []func(*stomp.Conn) error{stomp.ConnOpt.HeartBeat(0, 0)}
	if host != "" {
		opts = append(opts, stomp.ConnOpt.Host(host))
	}
	sc, err := stomp.Connect(conn, opts...)
	if err != nil {
		return err
	}
	return sc.Disconnect()
}

// renderConf renders the embedded template path of fsys with vars (a
// missing key is an error).
func renderConf(fsys embed.FS, path string, vars map[string]string) ([]byte, error) {
	text, err := fsys.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tpl, err := template.New(path).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, vars); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return out.Bytes(), nil
}

// mkdirs creates each directory, for a peer's base folder.
func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// removeData deletes the broker's stored messages once it has stopped.
func (p *Peer) removeData() {
	for _, d := range p.data {
		os.RemoveAll(d)
	}
}

func (p *Peer) logTails() string {
	var sb strings.Builder
	for _, l := range p.logs {
		fmt.Fprintf(&sb, "\n%s:\n%s", l, osutil.Tail(l, 30))
	}
	return sb.String()
}

// Stop stops the broker (SIGTERM, then SIGKILL to its process group after
// a bound) and then its helpers. It is safe to call on a partial Peer, and
// more than once.
func (p *Peer) Stop() error {
	var first error
	if p.main != nil {
		if p.main.alive() {
			if err := p.main.stop(peerStopTimeout); err != nil {
				first = fmt.Errorf("%w%s", err, p.logTails())
			}
		}
	}
	for _, h := range p.helpers {
		if h.alive() {
			if err := h.stop(10 * time.Second); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// peerCell runs one cell of a peer target: a fresh broker in dir (and for
// a JDBC store a fresh database), the workload, then the broker stopped.
func (m *Matrix) peerCell(ctx context.Context, tg Target, dir string, producers, size int) (Figures, error) {
	var p *Peer
	var err error
	switch tg.Peer {
	case PeerActiveMQ:
		c := ActiveMQConfig{Store: tg.PeerConfig}
		if tg.DB != "" {
			s, name, ferr := m.dbs.freshDatabase(ctx, tg.DB)
			if ferr != nil {
				return Figures{}, ferr
			}
			c.JDBCURL = fmt.Sprintf("jdbc:postgresql://%s/%s", s.Addr(), name)
			c.JDBCUser = "postgres"
		}
		p, err = StartActiveMQ(ctx, filepath.Join(dir, "activemq"), c)
	case PeerRabbitMQ:
		p, err = StartRabbitMQ(ctx, filepath.Join(dir, "rabbitmq"), tg.PeerConfig)
	case PeerNATS:
		p, err = StartNATS(ctx, filepath.Join(dir, "nats"), tg.PeerConfig)
	default:
		return Figures{}, fmt.Errorf("bench: target %s: unknown peer %q", tg.Name, tg.Peer)
	}
	if p != nil {
		// Stopped (again, a no-op after the Stop below) and its stored
		// messages removed whatever happens; logs and configuration stay.
		defer func() { p.Stop(); p.removeData() }()
	}
	if err != nil {
		return Figures{}, err
	}
	f, runErr := Run(ctx, Load{
		Addr: p.STOMP, Dest: "/queue/bench", Producers: producers, Size: size,
		Warmup: m.Warmup, Duration: m.Duration, Persistent: true,
		Host: p.Host, QueueHeaders: p.QueueHeaders, Protocol: p.Protocol,
	})
	if err := p.Stop(); err != nil && runErr == nil {
		runErr = err
	}
	return f, runErr
}
