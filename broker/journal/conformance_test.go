package journal_test

import (
	"testing"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/store/storetest"
	"github.com/lossbench/lossbench/broker/vfs"
)

// conformance runs the store suite on journals opened with opts in a
// fresh directory of fs (nil: a temporary directory on the real disk).
func conformance(t *testing.T, newFS func() vfs.FS, opts journal.Options) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dir := "/journal"
		o := opts
		if newFS == nil {
			dir = t.TempDir()
		} else {
			o.FS = newFS()
		}
		return storetest.Harness{
			Durable:   true,
			LargeBody: 256 << 10,
			Open: func(t *testing.T) store.Store {
				s, err := journal.Open(dir, o)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			},
		}
	})
}

func TestConformanceDisk(t *testing.T) {
	conformance(t, nil, journal.Options{SegmentSize: 64 << 10, Logf: t.Logf})
}

func TestConformanceMem(t *testing.T) {
	for _, policy := range []string{"batch", "always", "interval=1ms", "never"} {
		t.Run(policy, func(t *testing.T) {
			p, err := journal.ParseSyncPolicy(policy)
			if err != nil {
				t.Fatal(err)
			}
			conformance(t, func() vfs.FS { return vfs.NewMem() }, journal.Options{Sync: p, SegmentSize: 4 << 10})
		})
	}
}

func TestConformanceSmallRecoverBudget(t *testing.T) {
	conformance(t, func() vfs.FS { return vfs.NewMem() },
		journal.Options{SegmentSize: 16 << 10, RecoverBodyBudget: 10})
}
