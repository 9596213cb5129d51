// Package history is the record of every client operation in a run, one
// JSON object a line in history.jsonl. The workload writes it; the checker
// reads it and decides what was lost. It is the contract between the two, so
// its fields are part of the on-disk format: add fields, never rename them.
//
// A send is a pair of events: an "invoke" when the producer starts the SEND,
// then exactly one of "ok" (its RECEIPT arrived: acknowledged), "fail" (the
// broker answered with an ERROR: definitely not stored) or "unknown" (the
// connection broke before an answer: maybe stored). A retried send reuses
// the message id and gets a new invoke with Attempt+1. A consumer's delivery
// is one "recv" event (Process DrainProcess for the final drain's reads,
// DeadLetterProcess for its reads of a dead-letter queue).
// Faults are "fault-start" and "fault-end" events.
// The runner marks the send phase with "send-start" and "send-end": the
// checker measures unavailability and throughput over that phase even when
// the producers stopped sending (their broker gone, no connection to
// invoke on) long before it ended.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// DrainProcess is the Process of the runner's final drain: after the
// consumers stopped, fresh connections read what they left in the broker.
const DrainProcess = "drain"

// DeadLetterProcess is the Process of the final drain's reads of a
// destination's dead-letter queue (refbroker's /queue/DLQ.<name>): the
// broker gave up delivering these messages after too many redeliveries.
// Their recv events name the dead-letter queue as Dest.
const DeadLetterProcess = "dead-letter"

// Event types.
const (
	Invoke     = "invoke"
	OK         = "ok"
	Fail       = "fail"
	Unknown    = "unknown"
	Recv       = "recv"
	FaultStart = "fault-start"
	FaultEnd   = "fault-end"
	SendStart  = "send-start"
	SendEnd    = "send-end"
)

// Event is one line of history.jsonl.
type Event struct {
	// Time is when the event happened (wall clock, UTC, nanoseconds).
	Time time.Time `json:"t"`
	// Type is one of the event types above.
	Type string `json:"type"`
	// Process names the client: "p3" for producer 3, "c0" for consumer 0.
	Process string `json:"process,omitempty"`
	// Producer is the producer that made the message (on sends and recvs).
	Producer string `json:"producer,omitempty"`
	// Seq is the producer's sequence number of the message, from 1.
	Seq uint64 `json:"seq,omitempty"`
	// ID is the message's unique id (also sent as the dedup header).
	ID string `json:"id,omitempty"`
	// Attempt counts sends of the same ID, from 1.
	Attempt int `json:"attempt,omitempty"`
	// Dest is the destination.
	Dest string `json:"dest,omitempty"`
	// Node is the broker address the operation went to.
	Node string `json:"node,omitempty"`
	// LatencyNS is, on ok/fail/unknown, the time since the invoke; on recv,
	// the time since the message was first invoked (end-to-end).
	LatencyNS int64 `json:"latency_ns,omitempty"`
	// Redelivered is set on a recv the broker marked as redelivered.
	Redelivered bool `json:"redelivered,omitempty"`
	// Error says why a send failed or is unknown.
	Error string `json:"error,omitempty"`
	// Fault names the fault on fault-start and fault-end ("kill a1").
	Fault string `json:"fault,omitempty"`
}

// Writer appends events to a history file; it is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
}

// Create opens path for writing, truncating it.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	return &Writer{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

// Add appends e. Errors are sticky and reported by Close.
func (h *Writer) Add(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	h.mu.Lock()
	_ = h.enc.Encode(&e)
	h.mu.Unlock()
}

// Close flushes and closes the file.
func (h *Writer) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.w.Flush(); err != nil {
		h.f.Close()
		return fmt.Errorf("history: flush: %w", err)
	}
	if err := h.f.Close(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// Read parses a history stream. A malformed line is an error naming its
// line number.
func Read(r io.Reader) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("history: line %d: %w", line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: line %d: %w", line+1, err)
	}
	return out, nil
}

// ReadFile reads a history.jsonl file.
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	ev, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ev, nil
}
