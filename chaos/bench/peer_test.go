package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/peers"
)

func TestPeerAvailableNamesPackagesAndCommand(t *testing.T) {
	none := func(string) bool { return false }
	for kind, want := range map[string]string{
		PeerActiveMQ: "apt-get install -y activemq libpostgresql-jdbc-java libcommons-dbcp-java libcommons-pool-java",
		PeerRabbitMQ: "apt-get install -y rabbitmq-server",
	} {
		err := peerAvailable(kind, none)
		if !errors.Is(err, ErrPeerNotInstalled) {
			t.Fatalf("%s: got %v, want ErrPeerNotInstalled", kind, err)
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "install-peers.sh") {
			t.Errorf("%s: error %q does not say %q and install-peers.sh", kind, err, want)
		}
	}
	if err := peerAvailable(PeerActiveMQ, func(string) bool { return true }); err != nil {
		t.Errorf("everything present: %v", err)
	}
	if err := peerAvailable("qpid", none); err == nil || errors.Is(err, ErrPeerNotInstalled) {
		t.Errorf("unknown peer: got %v", err)
	}
	if err := (Target{Name: "journal-batch"}).Available(); err != nil {
		t.Errorf("refbroker target: %v", err)
	}
}

// TestActiveMQConfigs renders every ActiveMQ target's configuration: well
// formed XML, one STOMP connector on the given loopback address, no fixed
// default port and no other transport.
func TestActiveMQConfigs(t *testing.T) {
	const addr = "127.0.0.1:40123"
	n := 0
	for _, tg := range PeerTargets() {
		if tg.Peer != PeerActiveMQ {
			continue
		}
		n++
		c := ActiveMQConfig{Store: tg.PeerConfig}
		if tg.DB != "" {
			c.JDBCURL, c.JDBCUser = "jdbc:postgresql://127.0.0.1:5999/bench_7", "postgres"
		}
		out, err := activemqXML(c, addr)
		if err != nil {
			t.Fatalf("%s: %v", tg.Name, err)
		}
		dec := xml.NewDecoder(bytes.NewReader(out))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: not well-formed XML: %v\n%s", tg.Name, err, out)
			}
		}
		s := string(out)
		if strings.Count(s, "<transportConnector ") != 1 || !strings.Contains(s, `uri="stomp://`+addr+`"`) {
			t.Errorf("%s: want exactly one STOMP connector on %s:\n%s", tg.Name, addr, s)
		}
		for _, bad := range []string{"61613", "61616", "openwire", "0.0.0.0", "{{"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s: configuration contains %q", tg.Name, bad)
			}
		}
		if tg.DB != "" && !strings.Contains(s, `value="jdbc:postgresql://127.0.0.1:5999/bench_7"`) {
			t.Errorf("%s: JDBC URL missing:\n%s", tg.Name, s)
		}
		if tg.PeerConfig == "kahadb-nocsd" && !strings.Contains(s, `concurrentStoreAndDispatchQueues="false"`) {
			t.Errorf("%s: concurrentStoreAndDispatchQueues not off", tg.Name)
		}
	}
	if n != 3 {
		t.Errorf("%d ActiveMQ targets, want 3", n)
	}
	if _, err := activemqXML(ActiveMQConfig{Store: "jdbc"}, addr); err == nil {
		t.Error("jdbc without a URL: no error")
	}
	if _, err := activemqXML(ActiveMQConfig{Store: "leveldb"}, addr); err == nil {
		t.Error("unknown store: no error")
	}
}

func TestRabbitMQConfig(t *testing.T) {
	out, err := rabbitmqConfig("127.0.0.1:40124", "127.0.0.1:40125")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"stomp.listeners.tcp.1 = 127.0.0.1:40124\n", "\nlisteners.tcp.1 = 127.0.0.1:40125\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("rabbitmq.conf lacks %q:\n%s", want, s)
		}
	}
}

// TestPeerActiveMQCell runs one short cell of activemq-kahadb through the
// matrix (about 15 s: the JVM's start, a 1 s window, the stop) and checks
// that the broker took and delivered messages with the bench's client
// and left no process behind. It skips when ActiveMQ is not installed.
func TestPeerActiveMQCell(t *testing.T) {
	runPeerCells(t, "activemq-kahadb")
}

// TestPeerNATSCells does the same for NATS JetStream with both sync
// settings, through the JetStream client (a few seconds once
// nats-server is built; skipped, saying why, when it cannot be).
func TestPeerNATSCells(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := peers.NATSServer(ctx); err != nil {
		t.Skipf("no nats-server: %v", err)
	}
	runPeerCells(t, "nats-jetstream", "nats-jetstream-always")
}

// TestPeerActiveMQJDBCAndRabbitMQCells does the same for the JDBC store
// (with the bench's PostgreSQL) and RabbitMQ over STOMP and over AMQP,
// classic and quorum, heavier (about a minute): only with
// LOSSBENCH_PEER_TESTS=all.
func TestPeerActiveMQJDBCAndRabbitMQCells(t *testing.T) {
	if os.Getenv("LOSSBENCH_PEER_TESTS") != "all" {
		t.Skip("set LOSSBENCH_PEER_TESTS=all to run the JDBC and RabbitMQ peer cells")
	}
	runPeerCells(t, "activemq-jdbc-postgres", "rabbitmq", "rabbitmq-amqp", "rabbitmq-quorum")
}

func runPeerCells(t *testing.T, names ...string) {
	if testing.Short() {
		t.Skip("-short: peer brokers take seconds to start")
	}
	var tgs []Target
	for _, name := range names {
		for _, tg := range PeerTargets() {
			if tg.Name == name {
				if err := tg.Available(); err != nil {
					t.Skipf("%s: %v", name, err)
				}
				tgs = append(tgs, tg)
			}
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m := &Matrix{
		Targets: tgs, Producers: []int{1}, Sizes: []int{1024},
		Warmup: 500 * time.Millisecond, Duration: time.Second,
		Reference: names[0], WorkDir: dir, Logf: t.Logf,
	}
	rep, err := m.Run(ctx)
	defer assertNoProcessUnder(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Cells) != len(names) {
		t.Fatalf("%d cells, want %d", len(rep.Cells), len(names))
	}
	for _, c := range rep.Cells {
		if c.MsgsPerSec <= 0 || c.Errors != 0 || c.P99 <= 0 {
			t.Errorf("%s: %+v", c.Target, c.Figures)
		}
	}
	for _, p := range rep.Peers {
		if p.Version == "" {
			t.Errorf("no package version for %s", p.Kind)
		}
	}
}

// assertNoProcessUnder fails if a process whose command line names dir
// (a broker, an epmd, a database of the cells) still runs.
func assertNoProcessUnder(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, dir) {
			t.Errorf("process left running: %s: %.200s", filepath.Dir(p), cmd)
		}
	}
}
