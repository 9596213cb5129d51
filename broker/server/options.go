package server

import (
	"time"

	"github.com/lossbench/lossbench/broker/stomp"
)

// Defaults for Options fields left zero.
const (
	// DefaultPrefetch stays below what go-stomp (v3) buffers (20 ACKs +
	// 16+2 messages): beyond it, a go-stomp consumer that acks inline
	// deadlocks for good on a backlog (TestGoStompInlineAckDefaultPrefetch,
	// BenchmarkInlineAckBacklog). Set more per subscription with
	// prefetch-count or activemq.prefetchSize.
	DefaultPrefetch       = 16
	DefaultDedupWindow    = 100_000
	DefaultHeartbeat      = 10 * time.Second
	DefaultHeartbeatGrace = 2.0
	DefaultConnectTimeout = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultFrameTimeout   = 60 * time.Second
	DefaultMaxSubs        = 1000
	DefaultMaxQueues      = 10_000
	// DefaultMaxRedeliveries is ActiveMQ's default redelivery policy's.
	DefaultMaxRedeliveries = 6
	// DefaultMaxLoginFailures is per source address and minute.
	DefaultMaxLoginFailures = 5
	DefaultMemoryWait       = 30 * time.Second
)

// Header names the broker gives meaning to besides STOMP's own.
const (
	// HeaderDedup is the producer-supplied id that makes a retried SEND
	// to the same destination idempotent within the dedup window. It is
	// kept on the stored message so the window survives a restart.
	HeaderDedup = "dedup-id"
	// HeaderPrefetch and HeaderPrefetchAMQ set a subscription's prefetch:
	// at most this many unacknowledged messages in flight to it.
	HeaderPrefetch    = "prefetch-count"
	HeaderPrefetchAMQ = "activemq.prefetchSize"
)

// Options configure a Broker. The zero value is usable.
type Options struct {
	// Limits bound what a client may send in one frame.
	Limits stomp.Limits
	// Login and Passcode, when either is set, must match CONNECT's headers.
	Login, Passcode string
	// MaxLoginFailures is how many failed logins a source address may make
	// in a minute; past it, its CONNECTs are refused unchecked (and
	// unlogged) until the minute is over. Zero means
	// DefaultMaxLoginFailures, negative no limit.
	MaxLoginFailures int
	// MaxMemory bounds the bytes of every message held, per-message
	// overhead included (memory.go). Past it, persistent messages keep only
	// metadata and are loaded from the store at dispatch (when the store
	// implements store.Loader), and when even that does not fit, SENDs
	// wait for room (producer flow control). Zero means no bound.
	MaxMemory int64
	// MemoryWait is how long a SEND waits for room under MaxMemory before
	// it is answered with an ERROR, not stored; negative answers at once.
	MemoryWait time.Duration
	// MaxConnections bounds open client connections; one more is answered
	// with an ERROR frame and closed. Zero means no bound.
	MaxConnections int
	// DedupWindow is how many recent dedup-ids are remembered; negative
	// disables duplicate detection.
	DedupWindow int
	// MaxSubscriptions bounds the subscriptions of one connection, and
	// MaxQueues the queues a client may create (by SEND or SUBSCRIBE;
	// empty, unused queues are dropped to make room). Queues recovered
	// from the store are never refused.
	MaxSubscriptions, MaxQueues int
	// MaxRedeliveries is how often a message may be handed back (by NACK
	// or a consumer leaving without acking it, once it was written to the
	// client) and delivered again; handed back once more, it moves to
	// /queue/DLQ.<name> (see DLQPrefix). The count lives in memory: a
	// restart resets it. Zero means DefaultMaxRedeliveries, negative no
	// limit.
	MaxRedeliveries int
	// Prefetch is a subscription's default in-flight limit.
	Prefetch int
	// HeartbeatSend is how often the broker offers to send heart-beats and
	// HeartbeatReceive how often it asks the client to; negative disables.
	HeartbeatSend, HeartbeatReceive time.Duration
	// HeartbeatGrace multiplies the negotiated client interval before a
	// silent client is dropped.
	HeartbeatGrace float64
	// ConnectTimeout bounds the wait for the CONNECT frame.
	ConnectTimeout time.Duration
	// FrameTimeout bounds the time from a frame's first byte to its last,
	// whatever the heart-beats: a client trickling a frame is dropped.
	FrameTimeout time.Duration
	// WriteTimeout bounds one flush to a client that stopped reading.
	WriteTimeout time.Duration
	// Version is reported in CONNECTED's server header and in /status.
	Version string
	// FailMessage, when set and not empty for the error that failed the
	// broker, is the message header of the ERROR frames that tell clients
	// (default "broker failed"): refbroker says the database is
	// unavailable and it is reconnecting.
	FailMessage func(err error) string
	// Logf receives one line per event; nil discards.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Prefetch <= 0 {
		o.Prefetch = DefaultPrefetch
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = DefaultMaxSubs
	}
	if o.MaxQueues <= 0 {
		o.MaxQueues = DefaultMaxQueues
	}
	if o.MaxLoginFailures == 0 {
		o.MaxLoginFailures = DefaultMaxLoginFailures
	}
	if o.MaxRedeliveries == 0 {
		o.MaxRedeliveries = DefaultMaxRedeliveries
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.HeartbeatSend == 0 {
		o.HeartbeatSend = DefaultHeartbeat
	}
	if o.HeartbeatReceive == 0 {
		o.HeartbeatReceive = DefaultHeartbeat
	}
	if o.HeartbeatSend < 0 {
		o.HeartbeatSend = 0
	}
	if o.HeartbeatReceive < 0 {
		o.HeartbeatReceive = 0
	}
	if o.HeartbeatGrace < 1 {
		o.HeartbeatGrace = DefaultHeartbeatGrace
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.FrameTimeout <= 0 {
		o.FrameTimeout = DefaultFrameTimeout
	}
	if o.MemoryWait == 0 {
		o.MemoryWait = DefaultMemoryWait
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}
