package docker

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// lazyMounts lists the mount points of lazyfs mounts whose backing
// folder names s.
func lazyMounts(t *testing.T, s string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, tail := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(tail) >= 2 && strings.HasPrefix(tail[1], "lazyfs:") && strings.Contains(tail[1], s) {
			out = append(out, f[4])
		}
	}
	return out
}

// sendTo sends one persistent message with a receipt to node.
func sendTo(d *Driver, node, body string) error {
	addr, err := d.ClientAddr(node)
	if err != nil {
		return err
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := stomp.Connect(nc, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		return err
	}
	defer c.Disconnect()
	return c.Send("/queue/powercut", "text/plain", []byte(body), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true"))
}

// TestPowerCutAndDiskFaults runs refbroker containers on lazyfs served
// from the host: after a power cut, a1 (fsync never, data on its own
// volume) has lost the message it acknowledged, a2 (fsync always, data
// on disk a2-data) has kept it — were the data not on lazyfs, a1 would
// keep it too (a killed container's writes are in the host's page
// cache). Then a2's disk fails fsync with EIO: the broker fails stop and
// acknowledges nothing. Close unmounts lazyfs and leaves nothing.
func TestPowerCutAndDiskFaults(t *testing.T) {
	cli := engine(t)
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx := t.Context()
	run := "powercut-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topo := scenario.Topology{Sites: []scenario.Site{{Name: "a"}},
		Nodes: []scenario.Node{
			{Name: "a1", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal", Fsync: "never"}},
			{Name: "a2", Site: "a", Broker: scenario.Broker{Kind: scenario.RefBroker, Store: "journal", Fsync: "always"}}},
		Disks: []scenario.Disk{{Name: "a2-data", Node: "a2"}}}
	d, err := New(ctx, driver.Config{Topology: topo, RunID: run, Scenario: "powercut", Dir: t.TempDir(), Log: t.Logf,
		PowerCutNodes: []string{"a1", "a2"}, FaultFSNodes: []string{"a2"}, Writeback: scenario.WritebackNone})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if w := d.Info().Writeback; !strings.HasPrefix(w, "none") {
		t.Errorf("Info.Writeback = %q, want none", w)
	}
	if m := lazyMounts(t, run); len(m) != 2 {
		t.Fatalf("lazyfs mounts of the run: %q, want a1's and a2's", m)
	}
	for _, n := range []string{"a1", "a2"} {
		if err := d.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := sendTo(d, n, "m1"); err != nil {
			t.Fatalf("send to %s: %v", n, err)
		}
		if depth, ok := d.QueueDepth(ctx, n, "/queue/powercut"); !ok || depth != 1 {
			t.Fatalf("%s holds %d, %v messages before the cut, want 1", n, depth, ok)
		}
		if err := d.PowerCut(ctx, n); err != nil {
			t.Fatal(err)
		}
		if d.Running(n) {
			t.Fatalf("%s runs after its power cut", n)
		}
		if err := d.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if st := d.nodes["a1"].lazy.Stats(); st.Cuts != 1 || st.LastDropped == 0 {
		t.Errorf("a1's lazyfs after the cut: %+v, want one cut that dropped data", st)
	}
	for n, want := range map[string]int{"a1": 0, "a2": 1} {
		if depth, ok := d.QueueDepth(ctx, n, "/queue/powercut"); !ok || depth != want {
			t.Errorf("%s holds %d, %v messages after the power cut, want %d", n, depth, ok, want)
		}
	}

	// A disk fault of a1, whose data is on no disk, is unsupported.
	if err := d.DiskError(ctx, "a2-data", "a1", "EIO", []string{"fsync"}); err == nil {
		t.Error("DiskError on a2-data through a1 succeeded; a1 does not reach it")
	}
	if err := d.DiskError(ctx, "a2-data", "", "EIO", []string{"fsync"}); err != nil {
		t.Fatal(err)
	}
	if err := sendTo(d, "a2", "m2"); err == nil {
		t.Fatal("a2 acknowledged m2 though its disk fails every fsync")
	}
	deadline := time.Now().Add(30 * time.Second)
	for d.Running("a2") {
		if time.Now().After(deadline) {
			t.Fatal("a2 still runs 30 s after a failed fsync; want a fail stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.ClearDiskError(ctx, "a2-data", ""); err != nil {
		t.Fatal(err)
	}
	if got, err := d.CorruptDisk(ctx, "a2-data", "data/journal/*.log", 0, 1); err != nil || !strings.Contains(got, "data/journal/") {
		t.Errorf("CorruptDisk = %q, %v; want a journal file", got, err)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if m := lazyMounts(t, run); len(m) > 0 {
		t.Errorf("lazyfs still mounted after Close: %q", m)
	}
	if left := leftovers(t, cli, run); len(left) > 0 {
		t.Errorf("Close left %q", left)
	}
}

// TestLazyFSUnsupportedWithoutFault: a power cut of a node whose data
// is not on lazyfs (no fault named it) says why, wrapping ErrUnsupported.
func TestLazyFSUnsupportedWithoutFault(t *testing.T) {
	d := &Driver{nodes: map[string]*node{"a1": {spec: scenario.Node{Name: "a1"}}}}
	for _, err := range []error{d.PowerCut(t.Context(), "a1"), d.TornPowerCut(t.Context(), "a1", 1)} {
		if !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), "not on lazyfs") {
			t.Errorf("power cut of a node not on lazyfs: %v", err)
		}
	}
}
