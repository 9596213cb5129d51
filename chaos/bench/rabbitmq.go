package bench

import (
	"context"
	"embed"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/chaos/peers"
	"github.com/lossbench/lossbench/chaos/workload/amqp"
)

// Erlang's port mapper (Debian's RabbitMQ server script is
// peers.RabbitMQServer).
const epmdBin = "epmd"

//go:embed peers/rabbitmq.conf
var rabbitmqConf embed.FS

// rabbitmqQueueHeaders declare /queue/bench durable on SEND and SUBSCRIBE
// alike (RabbitMQ refuses a redeclaration with other properties).
var rabbitmqQueueHeaders = map[string]string{"durable": "true", "auto-delete": "false"}

// StartRabbitMQ starts Debian's RabbitMQ as node bench@localhost with
// everything under dir: its configuration (peers/rabbitmq.conf: the STOMP
// plugin on a free 127.0.0.1 port, AMQP off), Mnesia and message stores,
// logs, and the Erlang cookie (HOME). Erlang distribution needs a port
// mapper: an epmd of its own runs on a free 127.0.0.1 port, so neither the
// system's port 4369 nor a daemon outliving the bench is involved, and
// the node's distribution port is a free one on 127.0.0.1 too. It waits
// until the STOMP port answers a CONNECT (90 s at most).
//
// With queueType "" the bench speaks STOMP to a durable classic queue;
// otherwise AMQP 0-9-1 (amqp.Protocol: publisher confirms, manual acks)
// to a durable queue of that type (amqp.Classic, amqp.Quorum). RabbitMQ
// 3.10's STOMP plugin cannot carry a quorum queue's basic.nack: its
// connection process crashes (function_clause in
// rabbit_stomp_reader:handle_info), so quorum queues are measured over
// AMQP.
//
// On error the partial Peer is returned with the error so the caller can
// Stop it.
func StartRabbitMQ(ctx context.Context, dir, queueType string) (*Peer, error) {
	if err := PeerAvailable(PeerRabbitMQ); err != nil {
		return nil, err
	}
	base, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	conf, mnesia, logs, home := filepath.Join(base, "conf"), filepath.Join(base, "mnesia"), filepath.Join(base, "log"), filepath.Join(base, "home")
	if err := mkdirs(conf, mnesia, logs, home); err != nil {
		return nil, err
	}
	var ports [4]int // STOMP, epmd, distribution, AMQP
	for i := range ports {
		if ports[i], err = osutil.FreePort("127.0.0.1"); err != nil {
			return nil, err
		}
	}
	stompAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	amqpAddr := "127.0.0.1:" + strconv.Itoa(ports[3])
	confText, err := rabbitmqConfig(stompAddr, amqpAddr)
	if err != nil {
		return nil, err
	}
	confFile, plugins := filepath.Join(conf, "rabbitmq.conf"), filepath.Join(conf, "enabled_plugins")
	if err := os.WriteFile(confFile, confText, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(plugins, []byte("[rabbitmq_stomp].\n"), 0o644); err != nil {
		return nil, err
	}
	console := filepath.Join(base, "console.log")
	p := &Peer{
		Kind: PeerRabbitMQ, STOMP: stompAddr, Dir: base, Host: "/", QueueHeaders: rabbitmqQueueHeaders,
		logs: []string{console, filepath.Join(logs, "rabbit.log")},
		data: []string{mnesia},
	}
	epmdPort := strconv.Itoa(ports[1])
	epmd, err := startChild("epmd", base, filepath.Join(base, "epmd.log"), os.Environ(),
		epmdBin, "-address", "127.0.0.1", "-port", epmdPort)
	if err != nil {
		return nil, err
	}
	p.helpers = append(p.helpers, epmd)
	env := append(os.Environ(),
		"HOME="+home,
		"RABBITMQ_CONF_ENV_FILE=/dev/null", // not /etc/rabbitmq/rabbitmq-env.conf
		"RABBITMQ_NODENAME=bench@localhost",
		"RABBITMQ_CONFIG_FILE="+confFile,
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(conf, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
		"RABBITMQ_MNESIA_BASE="+mnesia,
		"RABBITMQ_LOG_BASE="+logs,
		"RABBITMQ_DIST_PORT="+strconv.Itoa(ports[2]),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+epmdPort,
	)
	if queueType != "" {
		// The bench speaks AMQP; the STOMP port still tells when the
		// node is up.
		stompReady := func(context.Context) bool { return stompPing(stompAddr, "/") == nil }
		p.STOMP, p.Protocol, p.ready = amqpAddr, amqp.Protocol{QueueType: queueType}, stompReady
	}
	if p.main, err = startChild("rabbitmq", base, console, env, peers.RabbitMQServer); err != nil {
		return p, err
	}
	if err := p.waitReady(ctx, peerStartTimeout); err != nil {
		return p, err
	}
	return p, nil
}

// rabbitmqConfig renders the embedded rabbitmq.conf with the STOMP
// listener on stompAddr and AMQP's on amqpAddr.
func rabbitmqConfig(stompAddr, amqpAddr string) ([]byte, error) {
	return renderConf(rabbitmqConf, "peers/rabbitmq.conf", map[string]string{"STOMP": stompAddr, "AMQP": amqpAddr})
}
