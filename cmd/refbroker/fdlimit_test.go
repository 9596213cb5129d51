package main

import (
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/stomp"
)

// TestConnectionFloodCannotFailStore: under RLIMIT_NOFILE 400 (set in the
// child by the shell's ulimit, soft and hard, so the runtime cannot raise
// it), 500 idle clients connect. Only 400-256 of them are served, every
// other one is refused with an ERROR frame, and the journal can still roll
// to a new segment: 75 MiB of persistent messages are all receipted and
// the broker exits 0 on SIGTERM. Before --max-connections, the clients took
// every descriptor and the roll failed the store ("too many open files").
func TestConnectionFloodCannotFailStore(t *testing.T) {
	const nofile, flood = 400, 500
	maxConns := nofile - fdReserve
	cmd := exec.Command("sh", "-c", `ulimit -n 400 && exec "$0" "$@"`, binary(t),
		"--listen", "127.0.0.1:0", "--admin=", "--data", t.TempDir(), "--heartbeat-send=0", "--heartbeat-receive=0")
	p := serving(t, launchCmd(t, cmd))
	if want := "max-connections 10000 lowered to 144"; !strings.Contains(p.stderr.String(), want) {
		t.Errorf("log lacks %q", want)
	}

	producer := dialBroker(t, p.addr)
	conns := make([]net.Conn, flood)
	for i := range conns {
		nc, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer nc.Close()
		conns[i] = nc
		io.WriteString(nc, "CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\x00")
	}
	// Each flood connection gets its first frame: CONNECTED or the refusal.
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			f, err := stomp.NewReader(nc, stomp.Limits{}).ReadFrame()
			what := "no answer"
			if err == nil {
				what = f.Command + " " + f.Get("message")
			}
			mu.Lock()
			got[what]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got["CONNECTED "] != maxConns-1 || got["ERROR too many connections"] != flood-(maxConns-1) {
		t.Errorf("flood answers %v, want %d CONNECTED (the producer holds one more) and the rest refused", got, maxConns-1)
	}

	// 5 × 15 MiB makes the journal roll past its first 64 MiB segment.
	body := make([]byte, 15<<20)
	for i := range 5 {
		if err := producer.Send("/queue/big", "application/octet-stream", body,
			gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatalf("send %d of 15 MiB: %v", i, err)
		}
	}
	producer.Disconnect()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}

// TestNoFileLimitTooLow: a descriptor limit that leaves nothing for
// clients after the reserve is refused at start with exit 2.
func TestNoFileLimitTooLow(t *testing.T) {
	cmd := exec.Command("sh", "-c", `ulimit -n 200 && exec "$0" "$@"`, binary(t),
		"--listen", "127.0.0.1:0", "--admin=", "--store", "memory")
	p := launchCmd(t, cmd)
	if code := p.exitCode(); code != 2 || !strings.Contains(p.stderr.String(), "RLIMIT_NOFILE is 200") {
		t.Fatalf("exit %d, want 2 naming RLIMIT_NOFILE:\n%s", code, p.stderr)
	}
}
