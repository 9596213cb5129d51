package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TestDiskFaultsNeedTheFaultFS: a disk whose node was not put on lazyfs
// (no disk fault named it, or no FUSE) refuses disk faults with a reason
// wrapping ErrUnsupported, so the runner skips the scenario instead of
// passing it; disk-corrupt works at rest without FUSE.
func TestDiskFaultsNeedTheFaultFS(t *testing.T) {
	d := newDriver(t, oneSite(scenario.Disk{Name: "d1", Node: "a1"}))
	ctx := context.Background()
	for name, err := range map[string]error{
		"disk-error": d.DiskError(ctx, "d1", "", "EIO", []string{"fsync"}),
		"disk-stall": d.StallDisk(ctx, "d1", ""),
		"torn":       d.TornPowerCut(ctx, "a1", 1),
	} {
		if !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), "lazyfs") {
			t.Errorf("%s: %v, want unsupported saying lazyfs", name, err)
		}
	}
	if _, err := d.CorruptDisk(ctx, "d1", "*.log", -1, 1); err == nil || !strings.Contains(err.Error(), "no file to corrupt") {
		t.Errorf("corrupt of an empty disk: %v", err)
	}
}

// TestDiskFaultsOnTheNodesData: with the node named in FaultFSNodes, the
// faults hit the node's data folder (the disk's): an fsync EIO, a stall
// that holds a write until it ends, a corrupt block in the backing file.
func TestDiskFaultsOnTheNodesData(t *testing.T) {
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: needs FUSE as root: %v", err)
	}
	d := newDriverWith(t, oneSite(scenario.Disk{Name: "d1", Node: "a1"}), func(o *Options) { o.FaultFSNodes = []string{"a1"} })
	ctx := context.Background()
	n, _ := d.node("a1")
	f, err := os.Create(filepath.Join(n.dataDir, "seg.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 2*lazyfs.BlockSize)); err != nil {
		t.Fatal(err)
	}
	if err := d.DiskError(ctx, "d1", "", "EIO", []string{"fsync"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync under disk-error: %v, want EIO", err)
	}
	if err := d.ClearDiskError(ctx, "d1", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync after the error cleared: %v", err)
	}
	if err := d.StallDisk(ctx, "d1", ""); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := f.Write([]byte("x")); done <- err }()
	for st, _ := d.LazyStats("a1"); st.Stalled == 0; st, _ = d.LazyStats("a1") {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("a write went through the stall: %v", err)
	default:
	}
	if err := d.EndDiskStall(ctx, "d1", ""); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	did, err := d.CorruptDisk(ctx, "d1", "*.log", 1, 0)
	if err != nil || !strings.Contains(did, "seg.log block 1") {
		t.Fatalf("corrupt: %q %v", did, err)
	}
	b, err := os.ReadFile(filepath.Join(n.backing, "seg.log"))
	if err != nil || len(b) != 2*lazyfs.BlockSize || b[0] != 0 || b[lazyfs.BlockSize] != 0xff {
		t.Fatalf("backing file after corrupt: %d bytes, %v", len(b), err)
	}
}

// TestSharedDiskPerNodeViews: the nodes of a shared disk each get their
// own view of it; a stall of one node's path holds that node's writes
// only, and a flock taken through one view excludes the other.
func TestSharedDiskPerNodeViews(t *testing.T) {
	if err := lazyfs.Available(); err != nil {
		t.Skipf("skipping: needs FUSE as root: %v", err)
	}
	topo := oneSite(scenario.Disk{Name: "san", Node: "a1", Nodes: []string{"a1", "a2"}})
	topo.Nodes = append(topo.Nodes, scenario.Node{Name: "a2", Site: "a", Broker: topo.Nodes[0].Broker})
	d := newDriverWith(t, topo, func(o *Options) { o.FaultFSNodes = []string{"a1", "a2"} })
	ctx := context.Background()
	v1, v2 := d.nodes["a1"].dataDir, d.nodes["a2"].dataDir
	if v1 == v2 || d.nodes["a1"].backing != d.nodes["a2"].backing {
		t.Fatalf("views %s and %s of backing %s and %s", v1, v2, d.nodes["a1"].backing, d.nodes["a2"].backing)
	}
	lock := func(dir string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, "shared.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	held, err := lock(v1)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if f, err := lock(v2); !errors.Is(err, syscall.EWOULDBLOCK) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("a2's view took the lock a1's holds: %v", err)
	}
	if err := d.StallDisk(ctx, "san", "a1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- os.WriteFile(filepath.Join(v1, "a1-file"), []byte("x"), 0o644) }()
	for st, _ := d.LazyStats("a1"); st.Stalled == 0; st, _ = d.LazyStats("a1") {
		time.Sleep(time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(v2, "a2-file"), []byte("y"), 0o644); err != nil {
		t.Fatalf("a2's path during a1's stall: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("a1's write went through its path's stall: %v", err)
	default:
	}
	if err := d.EndDiskStall(ctx, "san", "a1"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := d.StallDisk(ctx, "san", "b9"); err == nil {
		t.Fatal("a stall of a node that does not reach the disk")
	}
}
