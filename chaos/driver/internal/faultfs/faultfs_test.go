package faultfs

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/lossbench/lossbench/chaos/lazyfs"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

func TestRule(t *testing.T) {
	r, err := Rule("ENOSPC", []string{"write", "fsync"})
	if err != nil || r.Errno != syscall.ENOSPC || r.Ops != lazyfs.OpWrite|lazyfs.OpFsync {
		t.Errorf("Rule(ENOSPC, write fsync) = %+v, %v", r, err)
	}
	for _, c := range []struct {
		errno string
		ops   []string
		want  string
	}{{"EPERM", []string{"fsync"}, `errno "EPERM"`}, {"EIO", []string{"fsync", "chmod"}, "chmod"}} {
		if _, err := Rule(c.errno, c.ops); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Rule(%s, %v) = %v, want an error naming %s", c.errno, c.ops, err, c.want)
		}
	}
}

// Faulter's methods reach every view Find returns, and Find's error
// (a node not on lazyfs) comes back as it is.
func TestFaulterFindError(t *testing.T) {
	want := errors.New("not on lazyfs")
	f := Faulter{Name: "test", Find: func(disk, node string) ([]*lazyfs.FS, error) { return nil, want }, Log: t.Logf}
	for _, err := range []error{f.DiskError(t.Context(), "d", "", "EIO", []string{"fsync"}), f.ClearDiskError(t.Context(), "d", ""),
		f.StallDisk(t.Context(), "d", ""), f.EndDiskStall(t.Context(), "d", "")} {
		if !errors.Is(err, want) {
			t.Errorf("got %v, want Find's error", err)
		}
	}
	if _, _, err := Writeback("sometimes"); err == nil || !strings.Contains(err.Error(), scenario.WritebackNone) {
		t.Errorf("Writeback(sometimes) = %v, want an error listing the models", err)
	}
}
