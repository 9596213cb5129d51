package cjdbc

import (
	"context"

	"github.com/lossbench/lossbench/broker/store"
)

// Group is one group commit as every database applies it: the adds carry
// the seqs the Store assigned, so each database holds the same rows.
type Group struct {
	// N numbers the group: one more than the group before, across
	// restarts. A database records the last N it applied.
	N uint64
	// Adds are the group's new messages, Seq set; none is also in Acks.
	Adds []*store.Message
	// Acks are the seqs of messages consumed for good.
	Acks []uint64
	// High is the highest seq handed out so far (the high-water mark).
	High uint64
}

// State is what a database holds, read by Store.Open.
type State struct {
	// Applied is the N of the last group the database committed (0 for a
	// new database).
	Applied uint64
	// High is the highest seq the database knows of: its high-water mark
	// or its highest message.
	High uint64
	// Live are the seqs of its unacknowledged messages, in order.
	Live []uint64
}

// DB is one database of the set as the Store uses it. SQL implements it
// over broker/sqlstore; tests wrap it to inject faults.
type DB interface {
	// State reads the database's position and live seqs.
	State(ctx context.Context) (State, error)
	// Apply commits gs, consecutive groups in order, in one transaction
	// that also records the last one's N as applied. Groups with N up to
	// replayUntil may already be partly there (the database is catching
	// up after a copy): rows of their adds are replaced, not inserted
	// twice.
	Apply(ctx context.Context, gs []*Group, replayUntil uint64) error
	// Replace, in one transaction, deletes every message, writes every
	// message scan hands out, raises the high-water mark to high and
	// records applied: a full copy of another database.
	Replace(ctx context.Context, applied, high uint64, scan func(fn func(*store.Message) error) error) error
	// Scan calls fn for every unacknowledged message, with its body, in
	// seq order.
	Scan(ctx context.Context, fn func(*store.Message) error) error
	// Recover is store.Store's Recover: bodies past a budget may be nil,
	// to be read with Load.
	Recover(ctx context.Context, fn func(*store.Message) error) error
	// Load is store.Loader's Load.
	Load(ctx context.Context, seq uint64) ([]byte, error)
	// Close releases the connection.
	Close() error
}

// Opener connects to one database; the Store calls it at Open and again,
// every Options.Retry, while the database is disabled.
type Opener func(ctx context.Context) (DB, error)
