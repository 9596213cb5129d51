package lazyfs

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// These tests run the real refbroker with its journal on a lazyfs.

var refbroker struct {
	once sync.Once
	bin  string
	err  error
}

// refBin builds refbroker once for the package's tests.
func refBin(t *testing.T) string {
	t.Helper()
	refbroker.once.Do(func() {
		dir, err := os.MkdirTemp("", "lazyfs-refbroker")
		if err != nil {
			refbroker.err = err
			return
		}
		refbroker.bin = filepath.Join(dir, "refbroker")
		if out, err := exec.Command("go", "build", "-o", refbroker.bin, "github.com/lossbench/lossbench/cmd/refbroker").CombinedOutput(); err != nil {
			refbroker.err = errors.New(string(out))
		}
	})
	if refbroker.err != nil {
		t.Skipf("refbroker does not build: %v", refbroker.err)
	}
	return refbroker.bin
}

// broker is a refbroker process serving a journal in data.
type broker struct {
	addr   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// startRefbroker starts refbroker on the journal in data; extra are more
// flags (a second --data: the mirrored journal).
func startRefbroker(t *testing.T, data string, extra ...string) *broker {
	t.Helper()
	addr, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{addr: addr, done: make(chan struct{})}
	args := append([]string{"--store", "journal", "--fsync", "always", "--data", data, "--listen", addr, "--admin", admin}, extra...)
	b.cmd = exec.Command(refBin(t), args...)
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Kill()
		<-b.done
	})
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return b
		}
		select {
		case <-b.done:
			t.Fatalf("refbroker exited: %v\n%s", b.err, b.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exit waits for the process to end and returns its exit code.
func (b *broker) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(within):
		t.Fatalf("refbroker still running after %s\n%s", within, b.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(b.err, &ee) {
		return ee.ExitCode()
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return 0
}

func dialBroker(t *testing.T, addr string) *stomp.Conn {
	t.Helper()
	c, err := stomp.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sendDurable(c *stomp.Conn, body string) error {
	return c.Send("/queue/t", "text/plain", []byte(body), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true"))
}

// receiveAll reads /queue/t until it has want messages or 5s pass.
func receiveAll(t *testing.T, addr string, want int) map[string]bool {
	t.Helper()
	c := dialBroker(t, addr)
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/t", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	timeout := time.After(5 * time.Second)
	for len(got) < want {
		select {
		case m := <-sub.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			got[string(m.Body)] = true
		case <-timeout:
			return got
		}
	}
	return got
}

// refbrokerWithOne starts refbroker on a lazyfs and has it acknowledge
// m1 on the connection c.
func refbrokerWithOne(t *testing.T) (l *FS, data string, b *broker, c *stomp.Conn) {
	t.Helper()
	l, _, mnt := mount(t)
	data = filepath.Join(mnt, "data")
	b = startRefbroker(t, data)
	c = dialBroker(t, b.addr)
	if err := sendDurable(c, "m1"); err != nil {
		t.Fatal(err)
	}
	return l, data, b, c
}

// TestRefbrokerFsyncEIOFailsStop: an fsync EIO of the journal's segment
// under a single-directory refbroker: no RECEIPT for the message, exit 1,
// and exactly one failed fsync of that segment (it never retried: a retry
// would meet the rule again). What was acknowledged before is there after
// a restart. The rule names the first segment: the broker also
// preallocates (and syncs) the next one in the background, a different
// file, not a retry.
func TestRefbrokerFsyncEIOFailsStop(t *testing.T) {
	l, data, b, c := refbrokerWithOne(t)
	l.InjectError(ErrorRule{Errno: syscall.EIO, Ops: OpFsync, Pattern: "0000000000000001.log"})
	if err := sendDurable(c, "m2"); err == nil {
		t.Fatal("m2 acknowledged although its fsync failed")
	}
	if code := b.exit(t, 10*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1 (fail stop)\n%s", code, b.stderr.String())
	}
	if n := l.Stats().Injected; n != 1 {
		t.Fatalf("%d failed fsyncs, want 1: the broker retried a failed fsync\n%s", n, b.stderr.String())
	}
	l.ClearErrors()
	l.PowerCut()
	b = startRefbroker(t, data)
	if got := receiveAll(t, b.addr, 1); !got["m1"] {
		t.Fatalf("after the restart: %v, want m1", got)
	}
}

// TestRefbrokerStallHoldsReceipts: while the disk stalls no RECEIPT
// arrives; after it, the message is acknowledged and, like the one before,
// survives a kill -9 and a power cut.
func TestRefbrokerStallHoldsReceipts(t *testing.T) {
	l, data, b, c := refbrokerWithOne(t)
	l.Stall(time.Hour)
	acked := make(chan error, 1)
	go func() { acked <- sendDurable(c, "m2") }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for l.Stats().Stalled == 0 {
		if ctx.Err() != nil {
			t.Fatal("the broker never reached the stalled disk")
		}
		time.Sleep(time.Millisecond)
	}
	// The fsync is held: a receipt now would be an early acknowledgement.
	select {
	case err := <-acked:
		t.Fatalf("m2 answered (%v) while its fsync was held", err)
	case <-time.After(300 * time.Millisecond):
	}
	l.Unstall()
	if err := <-acked; err != nil {
		t.Fatalf("m2 after the stall: %v", err)
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	l.PowerCut()
	b = startRefbroker(t, data)
	if got := receiveAll(t, b.addr, 2); !got["m1"] || !got["m2"] {
		t.Fatalf("after kill -9 and a power cut: %v, want m1 and m2", got)
	}
}
