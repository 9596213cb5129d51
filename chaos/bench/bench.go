// Package bench measures a broker end to end the way the peers' figures
// in shared/peers were measured: N producers each sending persistent
// messages and waiting for a RECEIPT per SEND (or the protocol's
// confirmation: a JetStream PubAck), one consumer acknowledging each
// message individually, all on this machine.
//
// Throughput is counted as messages both acknowledged and consumed per
// second over the measured window, so a store whose consumer falls behind
// does not look fast: the backlog at the end is reported beside it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/chaos/workload"
)

// Load is one measurement's workload.
type Load struct {
	// Addr is the broker's STOMP address, host:port.
	Addr string
	// Dest is the queue; each cell should use its own.
	Dest string
	// Producers is the number of concurrent producers, each on its own
	// connection.
	Producers int
	// Size is the body size in bytes.
	Size int
	// Warmup runs before the measured window and is not counted.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// Persistent marks messages persistent:true.
	Persistent bool
	// Host is the CONNECT frame's host header, the virtual host; empty
	// means go-stomp's default, Addr's host (RabbitMQ takes the header as
	// its vhost and needs "/").
	Host string
	// QueueHeaders go on every SEND and the SUBSCRIBE: the queue
	// properties a broker's STOMP dialect needs beyond the standard
	// (RabbitMQ declares the queue from them, and refuses a SEND and a
	// SUBSCRIBE that disagree).
	QueueHeaders map[string]string
	// Protocol, when set, is the workload client Run speaks instead of
	// STOMP (NATS JetStream): a send waits for the protocol's
	// confirmation, the consumer acknowledges each delivery; Host and
	// QueueHeaders are then unused.
	Protocol workload.Protocol
}

// Figures are one cell's measured outcome.
type Figures struct {
	Producers int     `json:"producers"`
	Size      int     `json:"size"`
	Seconds   float64 `json:"seconds"`
	// Acknowledged counts receipts in the window; Consumed counts MESSAGE
	// frames the consumer received in the window.
	Acknowledged int64 `json:"acknowledged"`
	Consumed     int64 `json:"consumed"`
	// Backlog is acknowledged minus consumed over the whole run, warmup
	// included, when the producers stopped.
	Backlog int64 `json:"backlog"`
	// MsgsPerSec is min(acknowledged, consumed) per second: messages both
	// accepted and delivered.
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	AckedPerSec float64 `json:"acked_per_sec"`
	MBPerSec    float64 `json:"mb_per_sec"`
	// Latency of SEND to RECEIPT, in milliseconds, over the window.
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	P9999 float64 `json:"p9999_ms"`
	Max   float64 `json:"max_ms"`
	// MsgsPerSync is messages stored per fsync (journal) or per database
	// commit (jdbc), from the broker's /metrics: how well group commit
	// shares the sync.
	MsgsPerSync float64 `json:"msgs_per_sync,omitempty"`
	// FsyncMs is the broker's mean fdatasync time in this measurement,
	// from its /metrics (refbroker's journal only): the disk as the broker
	// saw it, in the same seconds.
	FsyncMs float64 `json:"fsync_ms,omitempty"`
	// CPUPerMsgUs is the broker process's CPU time (user and system, all
	// threads) from ready to the end of the load, in microseconds per
	// message it stored (refbroker only).
	CPUPerMsgUs float64 `json:"broker_cpu_us_per_msg,omitempty"`
	// SysCPUPerMsgUs is the part of CPUPerMsgUs spent in the kernel
	// (system time: syscalls, page cache, wake-ups).
	SysCPUPerMsgUs float64 `json:"broker_sys_cpu_us_per_msg,omitempty"`
	// InstrPerMsg is the broker's instructions per message it stored while
	// the load ran, counted by callgrind (lossbench bench --callgrind
	// only): the CPU cost without the machine's noise.
	InstrPerMsg float64 `json:"broker_instructions_per_msg,omitempty"`
	// Errors counts failed sends (an ERROR frame or a broken connection);
	// any error ends the producer that saw it.
	Errors int64 `json:"errors"`
}

// Run drives one cell and returns its figures. It stops by itself after
// Warmup+Duration, or earlier when ctx ends.
func Run(ctx context.Context, l Load) (Figures, error) {
	if l.Producers < 1 || l.Size < 0 || l.Duration <= 0 {
		return Figures{}, fmt.Errorf("bench: bad load %+v", l)
	}
	f := Figures{Producers: l.Producers, Size: l.Size}
	var cl client = stompClient{l}
	if l.Protocol != nil {
		cl = &protocolClient{l: l}
	}

	var (
		measuring atomic.Bool
		stopped   atomic.Bool
		consumed  atomic.Int64 // in the window
		total     atomic.Int64 // whole run
	)
	cons, err := cl.consume(func() {
		total.Add(1)
		if measuring.Load() {
			consumed.Add(1)
		}
	}, &stopped)
	if err != nil {
		return f, err
	}
	defer cons.close()

	body := make([]byte, l.Size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}

	start := time.Now()
	windowStart := start.Add(l.Warmup)
	end := windowStart.Add(l.Duration)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lats    []time.Duration
		acked   atomic.Int64 // in the window
		ackAll  atomic.Int64
		errs    atomic.Int64
		firstEr error
	)
	for p := 0; p < l.Producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			defer func() {
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			}()
			prod, err := cl.producer(ctx, p)
			if err != nil {
				errs.Add(1)
				mu.Lock()
				if firstEr == nil {
					firstEr = fmt.Errorf("bench: producer %d connect: %w", p, err)
				}
				mu.Unlock()
				return
			}
			defer prod.close()
			for seq := 0; ; seq++ {
				now := time.Now()
				if now.After(end) || ctx.Err() != nil {
					return
				}
				err := prod.send(body, seq)
				done := time.Now()
				if err != nil {
					errs.Add(1)
					mu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("bench: producer %d send %d: %w", p, seq, err)
					}
					mu.Unlock()
					return
				}
				ackAll.Add(1)
				if now.After(windowStart) && done.Before(end) {
					acked.Add(1)
					local = append(local, done.Sub(now))
				}
			}
		}(p)
	}
	// The window is measured on the wall clock independently of producers.
	select {
	case <-time.After(time.Until(windowStart)):
	case <-ctx.Done():
	}
	measuring.Store(true)
	select {
	case <-time.After(time.Until(end)):
	case <-ctx.Done():
	}
	measuring.Store(false)
	wg.Wait()
	f.Backlog = ackAll.Load() - total.Load()
	stopped.Store(true)
	cons.stop()
	var consErr error
	select {
	case consErr = <-cons.done():
	case <-time.After(2 * time.Second):
	}

	f.Seconds = l.Duration.Seconds()
	f.Acknowledged = acked.Load()
	f.Consumed = consumed.Load()
	f.Errors = errs.Load()
	both := f.Acknowledged
	if f.Consumed < both {
		both = f.Consumed
	}
	f.MsgsPerSec = float64(both) / f.Seconds
	f.AckedPerSec = float64(f.Acknowledged) / f.Seconds
	f.MBPerSec = f.MsgsPerSec * float64(l.Size) / (1 << 20)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	f.P50 = quantileMS(lats, 0.50)
	f.P90 = quantileMS(lats, 0.90)
	f.P99 = quantileMS(lats, 0.99)
	f.P999 = quantileMS(lats, 0.999)
	f.P9999 = quantileMS(lats, 0.9999)
	if n := len(lats); n > 0 {
		f.Max = ms(lats[n-1])
	}
	if firstEr != nil {
		return f, firstEr
	}
	if consErr != nil && !errors.Is(consErr, context.Canceled) {
		return f, consErr
	}
	return f, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// quantileMS returns the q-quantile of sorted durations (nearest rank), in
// milliseconds.
func quantileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
