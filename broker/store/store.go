// Package store defines the persistence contract between the refbroker's
// queues and its message stores (memory, journal, and later jdbc,
// journaled-jdbc, replicated). The contract is deliberately small: a store
// makes batches of adds and acks durable and replays what is still
// unacknowledged on start. Extra capabilities (reading a body back so the
// broker can page it out, statistics) are optional interfaces found by type
// assertion.
//
// Durability promise: when Write returns nil, every add and ack in the batch
// is as durable as the store's configured policy says (for the journal with
// fsync=always or batch: on stable storage). When Write returns an error the
// store has failed: the broker must stop acknowledging and fail stop. A store
// never retries a failed fsync.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ErrClosed is returned by a store used after Close.
var ErrClosed = errors.New("store: closed")

// ErrFailed wraps the first storage error after which a store refuses all
// further writes (fail-stop).
var ErrFailed = errors.New("store: failed")

// Header is one user header of a message, kept in the order it arrived.
type Header struct {
	Key, Value string
}

// Message is one persistent message as the store keeps it.
type Message struct {
	// Seq is assigned by the store in Write: unique, increasing in the order
	// the store accepted the adds, and stable across restarts. The broker
	// derives the STOMP message-id from it.
	Seq uint64
	// Queue is the destination, e.g. "/queue/orders".
	Queue string
	// Headers are the SEND frame's headers the broker passes on (without
	// destination, receipt, transaction, content-length).
	Headers []Header
	// Body is the payload. After Recover it may be nil when the store
	// implements Loader and chose not to keep it in memory; Size is then
	// the body's length.
	Body []byte
	// Size is len(Body) even when Body was not loaded.
	Size int
}

// Batch is one atomic unit of work: every add and ack in it becomes durable
// together, or none does (a STOMP transaction's COMMIT is one Batch).
type Batch struct {
	// Adds are new messages; Write sets their Seq.
	Adds []*Message
	// Acks are the Seqs of messages consumed for good.
	Acks []uint64
}

// Store is a message store.
type Store interface {
	// Recover calls fn for every unacknowledged message in Seq order. It is
	// called once, before the first Write.
	Recover(ctx context.Context, fn func(*Message) error) error
	// Write makes b durable as promised and returns only then.
	Write(ctx context.Context, b *Batch) error
	// Close flushes what is pending and releases the store.
	Close() error
}

// LazyAcker is implemented by stores that can take an ack-only batch
// without a sync of its own: WriteAcksLazy returns once the acks are
// written and applied, and they become durable with the store's next sync
// (or within a short bound when none comes). Only acks may be lazy: an ack
// lost in a crash makes its message come back (a duplicate), never lost.
// An ack whose client asked for a RECEIPT must go through Write.
type LazyAcker interface {
	WriteAcksLazy(ctx context.Context, seqs []uint64) error
}

// Loader is implemented by stores that can read a message body back, so
// the broker may drop bodies of a large backlog from memory.
type Loader interface {
	// Load returns the body of the unacknowledged message seq.
	Load(ctx context.Context, seq uint64) ([]byte, error)
}

// Statser is implemented by stores that expose statistics for /metrics and
// /status. Keys are Prometheus-style metric names without the
// "refbroker_store_" prefix, e.g. "fsyncs_total", "bytes_written_total".
type Statser interface {
	Stats() map[string]float64
}

// MirrorReporter is implemented by stores kept in several copies (the
// mirrored journal): /status shows each copy's state.
type MirrorReporter interface {
	Mirrors() []MirrorStatus
}

// MirrorStatus is one copy of a mirrored store.
type MirrorStatus struct {
	Dir string `json:"dir"`
	// State is healthy, failed, stale or rebuilding.
	State string `json:"state"`
	// Error is why it failed or is stale.
	Error string `json:"error,omitempty"`
	// CopiedBytes of TotalBytes: a rebuild's progress.
	CopiedBytes int64 `json:"copied_bytes,omitempty"`
	TotalBytes  int64 `json:"total_bytes,omitempty"`
}

// Namer says what kind of store this is, as shown in /status.
type Namer interface {
	Name() string
}

// Applier is implemented by stores that can apply batches whose adds
// already carry their Seq: assigning seqs is apart from making a batch
// durable, so a replica applies its master's records with the master's
// seqs (broker/replication). Recover and Load see applied messages as
// written ones.
type Applier interface {
	// Apply makes every batch of bs durable as Write would, in order and
	// each atomic, keeping the Seq of every add: the seqs must increase
	// across bs and be at least NextSeq, or Apply fails before writing
	// anything of the offending batch. Afterwards NextSeq is at least
	// next (the master's next seq), so that seqs are never handed out
	// twice.
	Apply(ctx context.Context, bs []*Batch, next uint64) error
	// NextSeq is the Seq the store would give the next add of a Write.
	NextSeq() uint64
}

// CheckAcks returns an error, prefixed by who, when acks name a message
// that is not in live (unknown or already acknowledged) or one message
// twice: the check a store makes of a Batch before applying any of it,
// so that a refused batch changes nothing.
func CheckAcks[V any](who string, acks []uint64, live map[uint64]V) error {
	const small = 16 // up to this many, a scan beats a set
	for i, seq := range acks {
		if _, ok := live[seq]; !ok {
			return fmt.Errorf("%s: ack of unknown message %d", who, seq)
		}
		if len(acks) <= small && slices.Contains(acks[:i], seq) {
			return fmt.Errorf("%s: message %d acknowledged twice in one batch", who, seq)
		}
	}
	if len(acks) > small {
		seen := make(map[uint64]struct{}, len(acks))
		for _, seq := range acks {
			if _, dup := seen[seq]; dup {
				return fmt.Errorf("%s: message %d acknowledged twice in one batch", who, seq)
			}
			seen[seq] = struct{}{}
		}
	}
	return nil
}
