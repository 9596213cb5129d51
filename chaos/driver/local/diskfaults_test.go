package local

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/driver"
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
		"disk-error": d.DiskError(ctx, "d1", "EIO", []string{"fsync"}),
		"disk-stall": d.StallDisk(ctx, "d1"),
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
