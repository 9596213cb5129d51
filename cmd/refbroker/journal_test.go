package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/broker/server"
)

// sendPersistent sends n receipted persistent messages to /queue/crash,
// with bodies prefix-000, prefix-001, ...
func sendPersistent(t *testing.T, addr, prefix string, n int) {
	t.Helper()
	c := dialBroker(t, addr)
	defer c.MustDisconnect()
	for i := range n {
		if err := c.Send("/queue/crash", "text/plain", []byte(fmt.Sprintf("%s-%03d", prefix, i)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
}

// stop sends SIGTERM and wants exit 0.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(); code != 0 {
		p.t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr)
	}
}

// segments lists the journal's segment files under data, oldest first.
func segments(t *testing.T, data string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(data, "journal", "*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no journal segments (%v)", err)
	}
	return segs
}

// refuses starts refbroker with args, wants exit 2 and stderr saying
// every one of want.
func refuses(t *testing.T, args []string, want ...string) string {
	t.Helper()
	p := launch(t, append(args, "--listen", "127.0.0.1:0", "--admin=")...)
	if code := p.exitCode(); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, p.stderr)
	}
	out := p.stderr.String()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("stderr does not say %q:\n%s", w, out)
		}
	}
	return out
}

// TestMissingSegmentRefusesStart deletes the journal's newest data
// segment of a stopped broker: it refuses to start, naming the file, and
// starts with --repair, saying what it lost.
func TestMissingSegmentRefusesStart(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--store", "journal"}
	p := start(t, args...)
	sendPersistent(t, p.addr, "record", 140)
	p.stop()
	segs := segments(t, data)
	// The newest file is the preallocated next segment, still empty.
	victim := segs[len(segs)-2]
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	refuses(t, args, "missing", filepath.Base(victim))
	p2 := start(t, append(args, "--repair")...)
	if !strings.Contains(p2.stderr.String(), "missing") {
		t.Errorf("--repair does not report the missing segment:\n%s", p2.stderr)
	}
	sendPersistent(t, p2.addr, "after", 3)
	if seen := drain(t, p2.addr); len(seen) != 3 {
		t.Fatalf("after repair got %d messages, want the 3 sent after it", len(seen))
	}
	p2.stop()
	// The repaired journal opens without --repair.
	start(t, args...).stop()
}

// TestTornTailAfterCleanShutdownRefusesStart flips a byte in the last
// frame of a journal that refbroker closed on SIGTERM: a clean shutdown
// leaves no torn tail, so this is corruption, named with file and offset.
func TestTornTailAfterCleanShutdownRefusesStart(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--store", "journal"}
	p := start(t, args...)
	sendPersistent(t, p.addr, "record", 50)
	p.stop()
	seg := segments(t, data)[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("record-049"))
	if i < 0 {
		t.Fatal("last record not found")
	}
	b[i] ^= 0x20
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	refuses(t, args, "corrupt", filepath.Base(seg), "offset", "clean shutdown")
	p2 := start(t, append(args, "--repair")...)
	if seen := drain(t, p2.addr); len(seen) != 49 {
		t.Fatalf("after repair got %d messages, want the 49 before the damaged one", len(seen))
	}
}

// TestSegmentSize: --segment-size sets the size of the journal's segment
// files; with several segments, deleting a middle one is noticed too.
func TestSegmentSize(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--store", "journal", "--segment-size", "16KiB"}
	p := start(t, args...)
	sendPersistent(t, p.addr, strings.Repeat("x", 500), 100)
	p.stop()
	segs := segments(t, data)
	if len(segs) < 4 {
		t.Fatalf("%d segment files for 50 KB in 16 KiB segments", len(segs))
	}
	for _, seg := range segs {
		if fi, err := os.Stat(seg); err != nil || fi.Size() != 16<<10 {
			t.Fatalf("%s: %v, want 16 KiB", seg, fi.Size())
		}
	}
	victim := segs[1]
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	refuses(t, args, "missing", filepath.Base(victim))
}

// TestPreallocFailureLoggedAtStart restarts a journal with segments too
// big for the file size limit: the failed preallocation of the next
// segment is logged at start, while the broker serves from the segment it
// has.
func TestPreallocFailureLoggedAtStart(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux)")
	}
	data := t.TempDir()
	p := start(t, "--data", data, "--store", "journal", "--segment-size", "64KiB")
	sendPersistent(t, p.addr, "before", 3)
	p.stop()
	cmd := exec.Command(prlimit, "--fsize=524288", binary(t), "--data", data, "--store", "journal",
		"--segment-size", "1MiB", "--listen", "127.0.0.1:0", "--admin=")
	p2 := serving(t, launchCmd(t, cmd))
	// Logged by the preallocation, which runs beside the start: wait for it.
	const want = "preallocate segment 0000000000000002.log"
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p2.stderr.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("the failed preallocation is not logged at start:\n%s", p2.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := p2.stderr.String(); !strings.Contains(out, "file too large") {
		t.Fatalf("the log does not say why:\n%s", out)
	}
	sendPersistent(t, p2.addr, "after", 3)
	if seen := drain(t, p2.addr); len(seen) != 6 {
		t.Fatalf("%d messages, want 6", len(seen))
	}
}

// journalDiskBytes sums the sizes of the journal's segment files.
func journalDiskBytes(t *testing.T, data string) int64 {
	t.Helper()
	var n int64
	for _, seg := range segments(t, data) {
		if fi, err := os.Stat(seg); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestCompactionBoundsDisk runs 1,600 200-byte messages through 8 KiB
// segments while a slow consumer holds the first 5 unacknowledged: disk
// use stays near the live data (without compaction the 5 would keep every
// segment, about 50 of them), refbroker_journal_disk_bytes says so, and
// after a restart the 5 come back and their acks hold.
func TestCompactionBoundsDisk(t *testing.T) {
	const segSize = 8 << 10
	data := t.TempDir()
	args := []string{"--data", data, "--store", "journal", "--segment-size", "8KiB"}
	b := startAdmin(t, "compact", args...)
	b.waitReady(t, 20*time.Second)

	// The slow consumer takes 5 and never acks them.
	slow := dialBroker(t, b.addr)
	sub, err := slow.Subscribe("/queue/crash", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("prefetch-count", "5"))
	if err != nil {
		t.Fatal(err)
	}
	sendPersistent(t, b.addr, "held", 5)
	held := map[string]bool{}
	for range 5 {
		m := <-sub.C
		if m.Err != nil {
			t.Fatal(m.Err)
		}
		held[string(m.Body)] = true
	}
	// A consumer that keeps up takes everything else.
	fast := dialBroker(t, b.addr)
	fsub, err := fast.Subscribe("/queue/crash", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	const producers, each = 4, 400
	got := make(chan int)
	go func() {
		i := 0
		for ; i < producers*each; i++ {
			if m := <-fsub.C; m == nil || m.Err != nil {
				break
			}
		}
		got <- i
	}()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sendPersistent(t, b.addr, fmt.Sprintf("p%d-%s", p, strings.Repeat("x", 200)), each)
			}()
		}
		wg.Wait()
	}()
	var maxDisk int64
	for done := false; !done; {
		select {
		case <-sent:
			done = true
		case <-time.After(5 * time.Millisecond): // a sample, not a wait
		}
		maxDisk = max(maxDisk, journalDiskBytes(t, data))
	}
	if k := <-got; k != producers*each {
		t.Fatalf("the fast consumer got %d of %d", k, producers*each)
	}
	st := b.status(t).StoreStats
	t.Logf("%d messages of 200 bytes through 8 KiB segments (%v bytes written): disk at most %d bytes; at the end %v bytes, live ratio %.3f, %v messages moved from %v segments",
		producers*each, st["bytes_written_total"], maxDisk, st["journal_disk_bytes"], st["journal_live_ratio"], st["compacted_messages_total"], st["compacted_segments_total"])
	if maxDisk > 8*segSize || st["bytes_written_total"] < 4*float64(maxDisk) {
		t.Fatalf("disk use reached %d bytes for 5 live messages", maxDisk)
	}
	if d := st["journal_disk_bytes"]; d <= 0 || d > 8*segSize {
		t.Fatalf("/status journal_disk_bytes %v", d)
	}
	resp, err := http.Get("http://" + b.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^refbroker_journal_disk_bytes [1-9]`).Match(metrics) ||
		!regexp.MustCompile(`(?m)^refbroker_journal_live_ratio `).Match(metrics) {
		t.Fatalf("/metrics lacks refbroker_journal_disk_bytes or _live_ratio")
	}
	// The fast consumer goes first (once the broker has dropped it, or it
	// would take the 5 back), then the slow one: the 5 are queued again.
	fast.MustDisconnect()
	b.waitQueue(t, "/queue/crash", func(q server.QueueStatus) bool { return q.Consumers == 1 })
	slow.MustDisconnect()
	b.waitQueue(t, "/queue/crash", func(q server.QueueStatus) bool { return q.Consumers == 0 && q.Depth == 5 })
	b.stop()

	// The held messages, moved forward, come back; acked by the drain, they
	// stay acked.
	p := start(t, args...)
	seen := drain(t, p.addr)
	if len(seen) != 5 {
		t.Fatalf("after restart %d messages, want the 5 held: %v", len(seen), seen)
	}
	for m := range seen {
		if !held[m] {
			t.Fatalf("after restart got %q, not one of the held %v", m, held)
		}
	}
	p.stop()
	p = start(t, args...)
	if seen := drain(t, p.addr); len(seen) != 0 {
		t.Fatalf("acked moved messages came back: %v", seen)
	}
}

// waitQueue waits until /status shows queue name in the state ok wants.
func (l *leased) waitQueue(t *testing.T, name string, ok func(server.QueueStatus) bool) {
	t.Helper()
	var last []server.QueueStatus
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		last = l.status(t).Queues
		for _, q := range last {
			if q.Name == name && ok(q) {
				return
			}
		}
	}
	t.Fatalf("queue %s never got there: %+v", name, last)
}
