package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

func TestPowerCutWithoutLazyFSIsUnsupported(t *testing.T) {
	d := newDriver(t, oneSite())
	err := d.PowerCut(context.Background(), "a1")
	if !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("power-cut of a node on a plain folder: %v", err)
	}
}

func TestPowerCutDropsUnsyncedData(t *testing.T) {
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: power-cut needs FUSE as root: %v", err)
	}
	dir := t.TempDir()
	d, err := New(oneSite(scenario.Disk{Name: "a1-data", Node: "a1"}), Options{Dir: dir, BrokerBin: brokerBin, ClientSite: "clients",
		ReadyTimeout: 10 * time.Second, StopTimeout: 2 * time.Second, Log: t.Logf, PowerCutNodes: []string{"a1"}})
	if d != nil {
		defer d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	data := d.nodes["a1"].dataDir
	if data != filepath.Join(dir, "nodes", "a1", lazyDir) || !mounted(data) {
		t.Fatalf("data folder %s is not the lazyfs mount", data)
	}
	if err := os.WriteFile(filepath.Join(data, "unsynced"), []byte("lost"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(data, "synced"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("kept")
	f.Sync()
	f.Close()
	if err := d.PowerCut(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if d.Running("a1") {
		t.Fatal("node still runs after the power cut")
	}
	if st, ok := d.LazyStats("a1"); !ok || st.Cuts != 1 || st.LastDropped == 0 {
		t.Fatalf("lazyfs stats %+v, %v", st, ok)
	}
	for name, want := range map[string]string{"unsynced": "", "synced": "kept"} {
		// Through the mount and on the backing disk alike.
		for _, p := range []string{filepath.Join(data, name), filepath.Join(dir, "disks", "a1-data", "data", name)} {
			if b, err := os.ReadFile(p); err != nil || string(b) != want {
				t.Errorf("%s after the cut: %q, %v; want %q", p, b, err, want)
			}
		}
	}
	if err := d.Start(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if mounted(data) {
		t.Fatalf("%s still mounted after Close", data)
	}
}

// TestReapUnmountsDeadLazyFS leaves a lazyfs mount behind the way a
// killed harness does (recorded in a state file of a dead owner) and
// checks the next Reap unmounts it.
func TestReapUnmountsDeadLazyFS(t *testing.T) {
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: needs FUSE as root: %v", err)
	}
	state, backing, mnt := t.TempDir(), t.TempDir(), t.TempDir()
	l, err := lazyfs.Mount(backing, mnt, lazyfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unmount()
	if err := os.MkdirAll(filepath.Join(state, StateSubdir), 0o755); err != nil {
		t.Fatal(err)
	}
	owner := exec.Command("true") // a dead owner
	if err := owner.Run(); err != nil {
		t.Fatal(err)
	}
	writeRecord(t, filepath.Join(state, StateSubdir, "1-1.json"), stateRecord{OwnerPID: owner.Process.Pid, Dir: "/gone", Mounts: []string{mnt}})
	did, err := Reap(state)
	if err != nil {
		t.Fatal(err)
	}
	if mounted(mnt) || len(did) != 1 {
		t.Fatalf("after Reap: mounted %v, did %q", mounted(mnt), did)
	}
}

// The scenario's writeback model reaches the lazyfs data folders and
// Info says which it is.
func TestWritebackModel(t *testing.T) {
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: needs FUSE as root: %v", err)
	}
	host, err := lazyfs.HostWriteback()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		model string
		want  lazyfs.Writeback
		info  string
	}{{"", host, "host: "}, {scenario.WritebackHost, host, "host: "}, {scenario.WritebackNone, lazyfs.Writeback{}, "none: "}} {
		d, err := New(oneSite(scenario.Disk{Name: "a1-data", Node: "a1"}), Options{Dir: t.TempDir(), BrokerBin: brokerBin, ClientSite: "clients",
			Log: t.Logf, PowerCutNodes: []string{"a1"}, Writeback: tc.model})
		if err != nil {
			d.Close()
			t.Fatal(err)
		}
		got, info := d.nodes["a1"].lazy.Writeback(), d.Info().Writeback
		d.Close()
		if got != tc.want || !strings.HasPrefix(info, tc.info) {
			t.Errorf("writeback %q: lazyfs %v, Info %q; want %v, %q...", tc.model, got, info, tc.want, tc.info)
		}
	}
	d, err := New(oneSite(), Options{Dir: t.TempDir(), BrokerBin: brokerBin, ClientSite: "clients", Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if w := d.Info().Writeback; w != "" {
		t.Errorf("no node on lazyfs, yet Info.Writeback %q", w)
	}
}
