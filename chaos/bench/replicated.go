package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// ReplicatedTargets are refbroker's replicated master/slave pairs
// (--replication-listen, min-replicas 1), each ack mode with the link
// between the two nodes at a round trip of 0, 1 and 5 ms (a delay proxy
// on the replication link, half the round trip each way).
func ReplicatedTargets() []Target {
	var out []Target
	for _, ack := range []string{"received", "fsynced"} {
		for _, rtt := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
			name := "replicated-" + ack
			if rtt > 0 {
				name += fmt.Sprintf("-rtt%dms", rtt.Milliseconds())
			}
			out = append(out, Target{Name: name, Args: []string{"--store", "journal", "--fsync", "batch", "--replica-ack", ack},
				Replica: ack, RTT: rtt,
				About: fmt.Sprintf("two refbrokers, min-replicas 1, --replica-ack %s, replication link round trip %v", ack, rtt)})
		}
	}
	return out
}

// replicatedCell measures a replicated pair: master a (loaded) and
// replica b, each on its own data directory, the replication link through
// delay proxies.
func (m *Matrix) replicatedCell(ctx context.Context, tg Target, dir string, producers, size int) (Figures, error) {
	replA, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return Figures{}, err
	}
	replB, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return Figures{}, err
	}
	toA, err := startDelayProxy(replA, tg.RTT/2)
	if err != nil {
		return Figures{}, err
	}
	defer toA.Close()
	toB, err := startDelayProxy(replB, tg.RTT/2)
	if err != nil {
		return Figures{}, err
	}
	defer toB.Close()
	timings := []string{"--lease-ttl", "1s", "--lease-renew", "200ms", "--lease-margin", "200ms"}
	argsA := append(append(append([]string(nil), tg.Args...), timings...), "--lease-owner", "a", "--replication-listen", replA, "--peer", toB.Addr())
	argsB := append(append(append([]string(nil), tg.Args...), timings...), "--lease-owner", "b", "--replication-listen", replB, "--peer", toA.Addr())
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{dirA, dirB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Figures{}, err
		}
		defer os.RemoveAll(filepath.Join(d, "data"))
	}
	a, err := StartBroker(ctx, m.BrokerBin, dirA, argsA)
	if err != nil {
		return Figures{}, err
	}
	defer a.Kill()
	// The replica is not ready (it serves no clients): the master's
	// in-sync count says when it is there.
	b, _, err := startBroker(m.BrokerBin, dirB, argsB)
	if err != nil {
		return Figures{}, err
	}
	defer b.Kill()
	if err := waitInSync(ctx, a.Admin, 30*time.Second); err != nil {
		return Figures{}, fmt.Errorf("%s: %w: %s", tg.Name, err, osutil.Tail(b.log, 20))
	}
	f, runErr := Run(ctx, Load{
		Addr: a.STOMP, Dest: "/queue/bench", Producers: producers, Size: size,
		Warmup: m.Warmup, Duration: m.Duration, Persistent: true,
	})
	if mets, err := a.Metrics(); err == nil {
		f.MsgsPerSync = perSync(mets)
	}
	if err := a.Stop(); err != nil && runErr == nil {
		runErr = err
	}
	_ = b.Stop()
	return f, runErr
}

// waitInSync waits until the master at admin has an in-sync replica.
func waitInSync(ctx context.Context, admin string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/status")
		if err == nil {
			var s struct {
				Replication struct {
					InSync int `json:"in_sync"`
				} `json:"replication"`
			}
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err == nil && s.Replication.InSync > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no replica in sync after %v", within)
}

// delayProxy forwards TCP connections to an upstream, holding every
// chunk back by a fixed delay in each direction (order kept): a link
// whose round trip is twice the delay.
type delayProxy struct {
	ln    net.Listener
	to    string
	delay time.Duration
	mu    sync.Mutex
	conns []net.Conn
}

func startDelayProxy(upstream string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, to: upstream, delay: delay}
	go p.accept()
	return p, nil
}

func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

func (p *delayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *delayProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pump(c, up)
		go p.pump(up, c)
	}
}

type chunk struct {
	due  time.Time
	data []byte
}

// pump copies src to dst, each chunk delay after it was read.
func (p *delayProxy) pump(src, dst net.Conn) {
	q := make(chan chunk, 4096)
	go func() {
		defer dst.Close()
		for ch := range q {
			if d := time.Until(ch.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(ch.data); err != nil {
				for range q {
				}
				return
			}
		}
	}()
	defer close(q)
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{due: time.Now().Add(p.delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}
