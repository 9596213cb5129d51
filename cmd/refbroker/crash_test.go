package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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
)

// These tests run the real refbroker binary, built once per test run.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "refbroker-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "refbroker")
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = "/usr/local/go/bin/go"
		}
		cmd := exec.Command(gobin, "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // from Wait, valid after done
	addr   string
}

var listening = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)

// start runs refbroker with args and waits until it serves STOMP.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return serving(t, launch(t, append([]string{"--listen", "127.0.0.1:0", "--admin="}, args...)...))
}

// serving waits until p serves STOMP.
func serving(t *testing.T, p *proc) *proc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr = m[1]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("refbroker exited before serving: %v\n%s", p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("refbroker not serving after 30s:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// launch starts refbroker without waiting for it to serve.
func launch(t *testing.T, args ...string) *proc {
	t.Helper()
	return launchCmd(t, exec.Command(binary(t), args...))
}

// launchCmd starts cmd, which runs refbroker, without waiting for it to
// serve.
func launchCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("refbroker stderr:\n%s", p.stderr)
		}
	})
	return p
}

// exitCode waits for the process and returns its exit status.
func (p *proc) exitCode() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("refbroker still running:\n%s", p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

type quiet struct{}

func (quiet) Debugf(string, ...any)   {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Errorf(string, ...any)   {}
func (quiet) Debug(string)            {}
func (quiet) Info(string)             {}
func (quiet) Warning(string)          {}
func (quiet) Error(string)            {}

func dialBroker(t *testing.T, addr string) *gostomp.Conn {
	t.Helper()
	c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Logger(quiet{}), gostomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// load runs producers sending persistent messages with receipts until
// stop is closed or their connection breaks; it returns the receipted
// bodies.
func load(t *testing.T, addr string, producers int, stop <-chan struct{}, acked func(n int)) map[string]bool {
	var mu sync.Mutex
	got := make(map[string]bool)
	var wg sync.WaitGroup
	for p := range producers {
		c := dialBroker(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.MustDisconnect()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("p%d-%06d", p, i)
				err := c.Send("/queue/crash", "text/plain", []byte(body+strings.Repeat(".", 1000)),
					gostomp.SendOpt.Receipt, gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Header("dedup-id", body))
				if err != nil {
					return
				}
				mu.Lock()
				got[body] = true
				n := len(got)
				mu.Unlock()
				acked(n)
			}
		}()
	}
	wg.Wait()
	return got
}

// lostExtra compares the receipted messages (load) with those drained
// after a crash: lost were receipted and not drained, extra drained and
// never receipted.
func lostExtra(got map[string]bool, seen map[string]int) (lost, extra int) {
	for body := range got {
		if seen[body] == 0 {
			lost++
		}
	}
	for body := range seen {
		if !got[body] {
			extra++
		}
	}
	return lost, extra
}

// drain receives everything on /queue/crash up to a marker sent after
// subscribing; recovery precedes serving, so the marker comes last.
func drain(t *testing.T, addr string) map[string]int {
	t.Helper()
	c := dialBroker(t, addr)
	defer c.MustDisconnect()
	// Auto ack: a go-stomp consumer that acks from the goroutine reading
	// the subscription deadlocks once the client's channels fill.
	s, err := c.Subscribe("/queue/crash", gostomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	// From another connection: go-stomp cannot take a RECEIPT while the
	// subscription's channel is full and unread.
	mc := dialBroker(t, addr)
	if err := mc.Send("/queue/crash", "text/plain", []byte("END"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	mc.MustDisconnect()
	seen := make(map[string]int)
	for {
		select {
		case m := <-s.C:
			if m.Err != nil {
				t.Fatal(m.Err)
			}
			body := string(m.Body)
			if body == "END" {
				return seen
			}
			seen[strings.TrimRight(body, ".")]++
		case <-time.After(60 * time.Second):
			t.Fatalf("drain stalled after %d messages", len(seen))
		}
	}
}

// crashAndCount loads a broker, kills it with SIGKILL mid-load once
// killAt messages were receipted, restarts it on the same data and
// returns how many receipted messages did not come back.
func crashAndCount(t *testing.T, killAt int, consume bool, args ...string) (acked, lost, extra int) {
	data := t.TempDir()
	args = append([]string{"--data", data}, args...)
	p := start(t, args...)
	var consumed *consumer
	if consume {
		consumed = startConsumer(t, p.addr, killAt/2)
	}
	stop := make(chan struct{})
	var once sync.Once
	kill := func(n int) {
		if n >= killAt {
			once.Do(func() { p.kill9(); close(stop) })
		}
	}
	got := load(t, p.addr, 8, stop, kill)
	once.Do(func() { p.kill9(); close(stop) })
	if code := p.exitCode(); code != -int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want killed", code)
	}
	before := map[string]bool{}
	if consumed != nil {
		before = consumed.wait()
	}
	p2 := start(t, args...)
	seen := drain(t, p2.addr)
	var missing []string
	for body := range got {
		if seen[body] == 0 && !before[body] {
			missing = append(missing, body)
		}
	}
	for body := range seen {
		if !got[body] {
			extra++
		}
	}
	if consumed != nil {
		t.Logf("consumed and acked before the kill: %d", len(before))
		if len(before) == 0 {
			t.Fatal("consumer got nothing before the kill")
		}
	}
	if len(missing) > 0 && len(missing) < 10 {
		t.Logf("lost: %v", missing)
	}
	return len(got), len(missing), extra
}

func TestCrashJournalLosesNothingAcknowledged(t *testing.T) {
	for _, fsync := range []string{"always", "batch"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			acked, lost, extra := crashAndCount(t, 1500, false, "--store", "journal", "--fsync", fsync)
			t.Logf("fsync=%s: %d receipted before kill -9, %d lost, %d unreceipted sends recovered", fsync, acked, lost, extra)
			if acked < 1500 {
				t.Fatalf("only %d receipted", acked)
			}
			if lost != 0 {
				t.Fatalf("%d of %d receipted messages lost", lost, acked)
			}
		})
	}
}

// TestCrashJournalWithConsumer crashes a broker while a consumer drains
// with client acks: every receipted message was either consumed (and only
// then acked) before the kill or comes back after it.
func TestCrashJournalWithConsumer(t *testing.T) {
	acked, lost, extra := crashAndCount(t, 2000, true, "--store", "journal", "--fsync", "batch")
	t.Logf("%d receipted, %d lost, %d unreceipted recovered", acked, lost, extra)
	if acked < 2000 {
		t.Fatalf("only %d receipted", acked)
	}
	if lost != 0 {
		t.Fatalf("%d of %d receipted messages lost", lost, acked)
	}
}

// consumer receives /queue/crash with client-individual acks, recording
// each body before acking it, until it has limit messages (then it
// disconnects, handing back what it holds) or its connection breaks.
type consumer struct {
	mu   sync.Mutex
	got  map[string]bool
	done chan struct{}
}

func startConsumer(t *testing.T, addr string, limit int) *consumer {
	c := dialBroker(t, addr)
	s, err := c.Subscribe("/queue/crash", gostomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	cs := &consumer{got: map[string]bool{}, done: make(chan struct{})}
	acks := make(chan *gostomp.Message, 1<<16)
	go func() {
		defer close(cs.done)
		for m := range acks {
			if c.Ack(m) != nil {
				break
			}
		}
		c.MustDisconnect()
		for range acks {
		}
	}()
	go func() {
		defer close(acks)
		for m := range s.C {
			if m.Err != nil {
				return
			}
			cs.mu.Lock()
			cs.got[strings.TrimRight(string(m.Body), ".")] = true
			n := len(cs.got)
			cs.mu.Unlock()
			acks <- m
			if n >= limit {
				return
			}
		}
	}()
	return cs
}

// wait returns what was consumed once the connection broke.
func (cs *consumer) wait() map[string]bool {
	<-cs.done
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.got
}

// TestCrashMemoryLoses proves the crash test can fail: the memory store
// loses receipted messages under kill -9.
func TestCrashMemoryLoses(t *testing.T) {
	acked, lost, _ := crashAndCount(t, 300, false, "--store", "memory")
	t.Logf("memory: %d receipted, %d lost", acked, lost)
	if lost == 0 {
		t.Fatalf("memory store lost nothing of %d receipted messages; the crash test cannot tell", acked)
	}
}

func TestSIGTERMIsClean(t *testing.T) {
	data := t.TempDir()
	p := start(t, "--data", data, "--store", "journal")
	c := dialBroker(t, p.addr)
	for i := range 50 {
		body := fmt.Sprintf("m%03d", i)
		if err := c.Send("/queue/crash", "text/plain", []byte(body), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	c.MustDisconnect()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr)
	}
	p2 := start(t, "--data", data, "--store", "journal")
	if seen := drain(t, p2.addr); len(seen) != 50 {
		t.Fatalf("%d messages after restart, want 50", len(seen))
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nfsync: sometimes\n"), 0o644)
	busy := start(t, "--store", "memory")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad flag", []string{"--no-such-flag"}, "no-such-flag"},
		{"bad fsync", []string{"--fsync", "sometimes"}, "fsync"},
		{"bad store", []string{"--store", "tape", "--listen", "127.0.0.1:0", "--admin="}, `unknown store "tape"`},
		{"config line", []string{"--config", cfg}, "bad.yaml:2: fsync"},
		{"data dir unusable", []string{"--store", "journal", "--data", filepath.Join(file, "sub"), "--listen", "127.0.0.1:0", "--admin="}, file},
		{"zero max-body", []string{"--store", "memory", "--max-body", "0"}, "limits.max-body: must be at least 1 byte"},
		{"max-body above max-frame", []string{"--store", "memory", "--max-body", "32MiB", "--max-frame", "1MiB"}, "limits.max-body: 32MiB is larger than limits.max-frame 1MiB"},
		{"passcode without login", []string{"--store", "memory", "--passcode", "secret", "--listen", "127.0.0.1:0", "--admin="}, "passcode: is set without login"},
		{"port in use", []string{"--store", "memory", "--listen", busy.addr, "--admin="}, "--listen " + busy.addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := launch(t, tt.args...)
			if code := p.exitCode(); code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", code, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), tt.want) {
				t.Fatalf("stderr does not say %q:\n%s", tt.want, p.stderr)
			}
		})
	}
}

// TestCorruptJournalRefusesStart damages a record in the middle of the
// log: refbroker refuses to start and names file and offset, and starts
// with --repair, losing only the damaged record.
func TestCorruptJournalRefusesStart(t *testing.T) {
	data := t.TempDir()
	p := start(t, "--data", data, "--store", "journal")
	c := dialBroker(t, p.addr)
	for i := range 20 {
		if err := c.Send("/queue/crash", "text/plain", []byte(fmt.Sprintf("record-%03d", i)), gostomp.SendOpt.Receipt,
			gostomp.SendOpt.Header("persistent", "true")); err != nil {
			t.Fatal(err)
		}
	}
	c.MustDisconnect()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	segs, _ := filepath.Glob(filepath.Join(data, "journal", "*.log"))
	if len(segs) == 0 {
		t.Fatal("no journal segments")
	}
	damaged := false
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte("record-005")); i >= 0 {
			copy(b[i:], "XXXXXXXXXX")
			os.WriteFile(seg, b, 0o644)
			damaged = true
		}
	}
	if !damaged {
		t.Fatal("record not found in segments")
	}
	p2 := launch(t, "--data", data, "--store", "journal", "--listen", "127.0.0.1:0", "--admin=")
	if code := p2.exitCode(); code != 2 {
		t.Fatalf("exit %d on a corrupt journal, want 2:\n%s", code, p2.stderr)
	}
	if out := p2.stderr.String(); !strings.Contains(out, "corrupt") || !strings.Contains(out, "offset") {
		t.Fatalf("stderr does not locate the corruption:\n%s", out)
	}
	// --repair skips the damaged frame only, keeps every valid frame
	// after it, and says which seq it lost (each record is one batch).
	p3 := start(t, "--data", data, "--store", "journal", "--repair")
	if out := p3.stderr.String(); !strings.Contains(out, "lost 1 messages (seqs 6)") {
		t.Errorf("--repair does not report the lost seq:\n%s", out)
	}
	seen := drain(t, p3.addr)
	if len(seen) != 19 || seen["record-005"] != 0 || seen["record-019"] != 1 {
		t.Fatalf("after repair got %d messages %v, want the 19 undamaged ones", len(seen), seen)
	}
}

// TestHelpAndVersion documents every flag.
func TestHelpAndVersion(t *testing.T) {
	p := launch(t, "--help")
	if code := p.exitCode(); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	help := p.stderr.String()
	sc := bufio.NewScanner(strings.NewReader(help))
	flags := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "  -") {
			flags++
		}
	}
	for _, f := range []string{"-listen", "-admin", "-store", "-data", "-fsync", "-segment-size", "-config", "-repair", "-version", "-max-frame", "-max-body",
		"-lease", "-lease-owner", "-lease-renew", "-lease-ttl", "-lease-margin", "-db-reconnect", "-db-reconnect-max",
		"-frame-timeout", "-max-subscriptions", "-max-queues", "-max-redeliveries", "-max-login-failures"} {
		if !strings.Contains(help, "  "+f) {
			t.Errorf("--help lacks %s", f)
		}
	}
	if !strings.Contains(help, "Database master/slave") {
		t.Error("--help does not explain --lease")
	}
	if !strings.Contains(help, "Losing the database") {
		t.Error("--help does not explain --db-reconnect")
	}
	if flags < 20 {
		t.Errorf("--help documents %d flags", flags)
	}
	out, err := exec.Command(binary(t), "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "refbroker ") {
		t.Fatalf("--version: %q %v", out, err)
	}
}
