package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/internal/osutil"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// brokerBin is the fakebroker built for these tests: a real child process
// with refbroker's flags.
var brokerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lossbench-local-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	brokerBin = filepath.Join(dir, "fakebroker")
	cmd := exec.Command("go", "build", "-o", brokerBin, "github.com/lossbench/lossbench/chaos/workload/fakebroker/cmd/fakebroker")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fakebroker:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func oneSite(disks ...scenario.Disk) scenario.Topology {
	return scenario.Topology{
		Sites: []scenario.Site{{Name: "a"}, {Name: "clients"}},
		Links: []scenario.Link{{A: "clients", B: "a"}},
		Nodes: []scenario.Node{{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "memory"}}},
		Disks: disks,
	}
}

func newDriver(t *testing.T, topo scenario.Topology) *Driver {
	t.Helper()
	return newDriverWith(t, topo, func(*Options) {})
}

// newDriverWith is newDriver with options changed by set.
func newDriverWith(t *testing.T, topo scenario.Topology, set func(*Options)) *Driver {
	t.Helper()
	o := Options{Dir: t.TempDir(), BrokerBin: brokerBin, ClientSite: "clients",
		ReadyTimeout: 10 * time.Second, StopTimeout: 2 * time.Second, Log: t.Logf}
	set(&o)
	d, err := New(topo, o)
	if d != nil {
		t.Cleanup(func() {
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sendOnce connects to addr and sends one message with a receipt, bounded
// by timeout; it returns the round trip.
func sendOnce(addr string, timeout time.Duration) (time.Duration, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(timeout))
	c, err := stomp.Connect(nc, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := c.Send("/queue/t", "", []byte("x"), stomp.SendOpt.Receipt); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func TestSiteAddresses(t *testing.T) {
	if got := SiteIP(0, 0); got != "127.0.1.1" {
		t.Fatal(got)
	}
	ln, err := net.Listen("tcp", SiteIP(2, 3)+":0")
	if err != nil {
		t.Fatalf("127.0.x.y must bind here: %v", err)
	}
	ln.Close()
}

func TestStartKillPauseRestart(t *testing.T) {
	d := newDriver(t, oneSite())
	ctx := context.Background()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := d.ClientAddr("a1")
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.1.1" {
		t.Fatalf("client address %s, want one on 127.0.1.1", addr)
	}
	if _, err := sendOnce(addr, 2*time.Second); err != nil {
		t.Fatalf("send to running node: %v", err)
	}
	if err := d.Start(ctx, "a1"); err == nil {
		t.Fatal("second Start of a running node succeeded")
	}

	if err := d.Pause(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if !d.Running("a1") {
		t.Fatal("paused node not running")
	}
	if _, err := sendOnce(addr, 300*time.Millisecond); err == nil {
		t.Fatal("send to a paused node succeeded")
	}
	if err := d.Resume(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 2*time.Second); err != nil {
		t.Fatalf("send after resume: %v", err)
	}

	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if d.Running("a1") {
		t.Fatal("killed node running")
	}
	if _, err := sendOnce(addr, time.Second); err == nil {
		t.Fatal("send to a killed node succeeded")
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatalf("kill of a dead node: %v", err)
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 2*time.Second); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if err := d.Stop(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if d.Running("a1") {
		t.Fatal("stopped node running")
	}
	log, _ := d.LogPath("a1")
	b, err := os.ReadFile(log)
	if err != nil || len(b) == 0 {
		t.Fatalf("node log %s: %v, %d bytes", log, err, len(b))
	}
}

func TestCommandBrokerReadyByPort(t *testing.T) {
	topo := oneSite()
	topo.Nodes[0].Broker = scenario.Broker{Kind: scenario.Command, Command: []string{brokerBin, "--listen", "{listen}"}}
	d := newDriver(t, topo)
	if err := d.StartAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr, _ := d.ClientAddr("a1")
	if _, err := sendOnce(addr, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	topo := oneSite()
	topo.Nodes[0].Broker = scenario.Broker{Kind: scenario.Command, Command: []string{"sh", "-c", "echo boom-{node} >&2; exit 3"}}
	d := newDriver(t, topo)
	err := d.StartAll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "boom-a1") {
		t.Fatalf("error %v, want the log's last lines", err)
	}
}

func TestPartitionCutsAndHealRestores(t *testing.T) {
	d := newDriver(t, oneSite())
	ctx := context.Background()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, _ := d.ClientAddr("a1")
	// A live connection is cut by the partition.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := stomp.Connect(nc, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Cut(ctx, "clients", "a"); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	if err := c.Send("/queue/t", "", []byte("x"), stomp.SendOpt.Receipt); err == nil {
		t.Fatal("send on a cut connection succeeded")
	}
	if _, err := sendOnce(addr, 500*time.Millisecond); err == nil {
		t.Fatal("new connection through a cut link succeeded")
	}
	// Cuts nest.
	if err := d.Cut(ctx, "a1", driver.Any); err != nil {
		t.Fatal(err)
	}
	if err := d.Heal(ctx, "clients", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 500*time.Millisecond); err == nil {
		t.Fatal("link healed while a second cut holds it")
	}
	if err := d.Heal(ctx, "a1", driver.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := sendOnce(addr, 2*time.Second); err != nil {
		t.Fatalf("send after heal: %v", err)
	}
	if err := d.Cut(ctx, "clients", "nowhere"); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("cut of an unknown end: %v", err)
	}
}

func TestLatencyToxicAddsDelay(t *testing.T) {
	d := newDriver(t, oneSite())
	ctx := context.Background()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, _ := d.ClientAddr("a1")
	base, err := sendOnce(addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.AddToxic(ctx, "clients", "a", driver.Toxic{Kind: driver.ToxicLatency, Latency: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := sendOnce(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// 100ms each way: the receipt's round trip grows by about 200ms.
	if slow < base+150*time.Millisecond {
		t.Fatalf("round trip %s with latency toxic, %s without", slow, base)
	}
	if err := d.RemoveToxic(ctx, id); err != nil {
		t.Fatal(err)
	}
	fast, err := sendOnce(addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fast >= slow {
		t.Fatalf("round trip %s after removing the toxic, %s with it", fast, slow)
	}
	if err := d.RemoveToxic(ctx, id); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("second remove: %v", err)
	}
}

func TestResetAndBlackholeToxics(t *testing.T) {
	d := newDriver(t, oneSite())
	ctx := context.Background()
	if err := d.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	addr, _ := d.ClientAddr("a1")
	for _, kind := range []string{driver.ToxicReset, driver.ToxicBlackhole} {
		id, err := d.AddToxic(ctx, "a1", driver.Any, driver.Toxic{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sendOnce(addr, 500*time.Millisecond); err == nil {
			t.Fatalf("send through a %s toxic succeeded", kind)
		}
		if err := d.RemoveToxic(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := sendOnce(addr, 2*time.Second); err != nil {
			t.Fatalf("send after removing %s: %v", kind, err)
		}
	}
}

func TestDiskWipeAndFill(t *testing.T) {
	topo := oneSite(scenario.Disk{Name: "a1-data", Node: "a1", Size: 4 << 20})
	d := newDriver(t, topo)
	ctx := context.Background()
	dk := d.disks["a1-data"]
	if got := d.nodes["a1"].dataDir; got != filepath.Join(dk.path, "data") {
		t.Fatalf("data dir %s not on the disk %s", got, dk.path)
	}
	if err := os.MkdirAll(filepath.Join(dk.path, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dk.path, "data", "journal")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.WipeNode(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file survived the wipe: %v", err)
	}
	if os.Geteuid() != 0 {
		if err := d.FillDisk(ctx, "a1-data"); !errors.Is(err, driver.ErrUnsupported) {
			t.Fatalf("fill without root: %v", err)
		}
		t.Skip("disk-full needs root for a tmpfs: skipped")
	}
	if !mounted(dk.path) {
		t.Fatal("sized disk not a mount")
	}
	if err := d.FillDisk(ctx, "a1-data"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dk.path, "more"), make([]byte, 64<<10), 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to a full disk: %v", err)
	}
	if err := d.FreeDisk(ctx, "a1-data"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dk.path, "more"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatalf("write after free: %v", err)
	}
	path := dk.path
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if mounted(path) {
		t.Fatal("Close left the tmpfs mounted")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	stateDir := t.TempDir()
	d, err := New(oneSite(), Options{Dir: t.TempDir(), StateDir: stateDir, BrokerBin: brokerBin, ClientSite: "clients"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.StartAll(context.Background()); err != nil {
		d.Close()
		t.Fatal(err)
	}
	pid := d.nodes["a1"].current().pid
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if osutil.Alive(pid, 0) {
		t.Fatal("broker alive after Close")
	}
	ents, _ := os.ReadDir(filepath.Join(stateDir, StateSubdir))
	if len(ents) != 0 {
		t.Fatalf("state files left: %v", ents)
	}
}

// TestReapLeftovers simulates a harness killed with SIGKILL: its state
// file names a broker that still runs (in its own process group, as the
// driver starts them) and a tmpfs still mounted. The next run's Reap must
// kill and unmount them, and leave a live harness's file alone.
func TestReapLeftovers(t *testing.T) {
	stateDir := t.TempDir()
	dir := filepath.Join(stateDir, StateSubdir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A dead owner: a process that has exited.
	owner := exec.Command("true")
	if err := owner.Run(); err != nil {
		t.Fatal(err)
	}
	broker := exec.Command(brokerBin, "--listen", "127.0.0.1:0")
	broker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = broker.Wait(); close(done) }()
	defer func() { _ = broker.Process.Kill() }()
	start, err := osutil.ProcStart(broker.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rec := stateRecord{OwnerPID: owner.Process.Pid, Dir: "/killed/run",
		Procs: []procRecord{{Node: "a1", PID: broker.Process.Pid, Start: start}}}
	mnt := filepath.Join(stateDir, "disk")
	if os.Geteuid() == 0 {
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		defer syscall.Unmount(mnt, syscall.MNT_DETACH)
		rec.Mounts = []string{mnt}
	}
	writeRecord(t, filepath.Join(dir, "1-1.json"), rec)
	// A live owner (this test's parent, the go tool): left alone.
	live := stateRecord{OwnerPID: os.Getppid(), Procs: []procRecord{{Node: "x", PID: broker.Process.Pid, Start: start}}}
	writeRecord(t, filepath.Join(dir, "2-2.json"), live)

	did, err := Reap(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reaped: %q", did)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("left-over broker still runs")
	}
	if len(rec.Mounts) > 0 && mounted(mnt) {
		t.Fatal("left-over tmpfs still mounted")
	}
	if _, err := os.Stat(filepath.Join(dir, "1-1.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("state file of the dead run not removed")
	}
	if _, err := os.Stat(filepath.Join(dir, "2-2.json")); err != nil {
		t.Fatal("state file of a live run removed")
	}
	if len(did) < 1 {
		t.Fatal("Reap reported nothing")
	}
}

func writeRecord(t *testing.T, path string, r stateRecord) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSharedDisk: the nodes of a shared disk get one data directory on it,
// and losing one node (WipeNode) leaves it alone.
func TestSharedDisk(t *testing.T) {
	topo := oneSite(scenario.Disk{Name: "san", Node: "a1", Nodes: []string{"a1", "a2"}})
	topo.Nodes = append(topo.Nodes, scenario.Node{Name: "a2", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "memory"}})
	d := newDriver(t, topo)
	dk := d.disks["san"]
	want := filepath.Join(dk.path, "data")
	for _, n := range []string{"a1", "a2"} {
		if got := d.nodes[n].dataDir; got != want {
			t.Fatalf("%s: data dir %s, want the shared %s", n, got, want)
		}
	}
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(want, "shared.lease")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.WipeNode(context.Background(), "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("losing node a1 wiped the shared disk: %v", err)
	}
}
