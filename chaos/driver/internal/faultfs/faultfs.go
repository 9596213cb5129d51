// Package faultfs holds what the drivers that serve a node's data
// through chaos/lazyfs (local, docker) share: the scenario's writeback
// model and its disk-error rules, read the same way by both.
package faultfs

import (
	"context"
	"fmt"
	"syscall"

	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Writeback is the lazyfs writeback of a scenario's writeback model
// (scenario.WritebackHost, "" or WritebackNone), with its description
// for driver.Info.Writeback.
func Writeback(model string) (lazyfs.Writeback, string, error) {
	switch model {
	case scenario.WritebackNone:
		return lazyfs.Writeback{}, "none: only fsync makes data durable", nil
	case scenario.WritebackHost, "":
		wb, err := lazyfs.HostWriteback()
		if err != nil {
			return wb, "", err
		}
		if wb.None() {
			return wb, "host: none (this machine's periodic writeback is off: vm.dirty_writeback_centisecs or vm.dirty_expire_centisecs is 0)", nil
		}
		return wb, "host: " + wb.String() + " (vm.dirty_expire_centisecs, vm.dirty_writeback_centisecs)", nil
	}
	return lazyfs.Writeback{}, "", fmt.Errorf("writeback %q: expected one of %v", model, scenario.WritebackModels)
}

// errnos maps scenario.Errnos to their values.
var errnos = map[string]syscall.Errno{"EIO": syscall.EIO, "ENOSPC": syscall.ENOSPC}

// Rule is the lazyfs rule of a disk-error fault: ops ("read", "write",
// "fsync") fail with errno ("EIO", "ENOSPC").
func Rule(errno string, ops []string) (lazyfs.ErrorRule, error) {
	e, ok := errnos[errno]
	if !ok {
		return lazyfs.ErrorRule{}, fmt.Errorf("errno %q: expected one of %v", errno, scenario.Errnos)
	}
	var set lazyfs.Op
	for _, o := range ops {
		op, err := lazyfs.ParseOp(o)
		if err != nil {
			return lazyfs.ErrorRule{}, err
		}
		set |= op
	}
	return lazyfs.ErrorRule{Errno: e, Ops: set}, nil
}

// Faulter is the driver.DiskFaulter of a driver whose nodes' data is on
// lazyfs (the driver embeds it): Find returns the views of a disk a fault hits (node "" is
// every node's path to it, else that node's alone) or an error wrapping
// driver.ErrUnsupported saying why there are none; Name prefixes errors
// ("local", "docker").
type Faulter struct {
	Name string
	Find func(disk, node string) ([]*lazyfs.FS, error)
	Log  func(string, ...any)
}

// path says whose path to the disk a fault hits, for the log.
func path(node string) string {
	if node == "" {
		return ""
	}
	return " (" + node + "'s path only)"
}

// DiskError makes ops on the disk's files fail with errno until
// ClearDiskError.
func (f Faulter) DiskError(_ context.Context, disk, node, errno string, ops []string) error {
	rule, err := Rule(errno, ops)
	if err != nil {
		return fmt.Errorf("%s: disk %s: %w", f.Name, disk, err)
	}
	if err := f.each(disk, node, func(l *lazyfs.FS) { l.InjectError(rule) }); err != nil {
		return err
	}
	f.Log("disk %s%s: %v fails with %s", disk, path(node), ops, errno)
	return nil
}

// ClearDiskError ends the disk's errors.
func (f Faulter) ClearDiskError(_ context.Context, disk, node string) error {
	return f.each(disk, node, (*lazyfs.FS).ClearErrors)
}

// StallDisk holds every operation on the disk until EndDiskStall (or the
// longest duration a scenario may have).
func (f Faulter) StallDisk(_ context.Context, disk, node string) error {
	if err := f.each(disk, node, func(l *lazyfs.FS) { l.Stall(scenario.MaxDuration) }); err != nil {
		return err
	}
	f.Log("disk %s%s: stalled", disk, path(node))
	return nil
}

// EndDiskStall ends the disk's stall.
func (f Faulter) EndDiskStall(_ context.Context, disk, node string) error {
	return f.each(disk, node, (*lazyfs.FS).Unstall)
}

func (f Faulter) each(disk, node string, do func(*lazyfs.FS)) error {
	ls, err := f.Find(disk, node)
	if err != nil {
		return err
	}
	for _, l := range ls {
		do(l)
	}
	return nil
}
