package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DiskFigures are the physical limits of the filesystem a store writes to,
// measured beside the broker so each broker figure reads as a fraction of
// them.
type DiskFigures struct {
	Dir string `json:"dir"`
	// SyncsPerSec is 4 KiB write + fdatasync pairs per second, one writer.
	SyncsPerSec float64 `json:"fdatasync_4k_per_sec"`
	// Grouped16PerSec is 4 KiB writes per second when 16 share one
	// fdatasync (what group commit can reach at best with 16 producers).
	Grouped16PerSec float64 `json:"writes_4k_per_sec_16_per_sync"`
}

// ProbeDisk measures dir's fdatasync rate for d each (two probes). The file
// is preallocated with zeros first so, as in the journal, fdatasync does not
// also flush a size change.
func ProbeDisk(dir string, d time.Duration) (DiskFigures, error) {
	df := DiskFigures{Dir: dir}
	var err error
	if df.SyncsPerSec, err = probe(dir, 1, d); err != nil {
		return df, err
	}
	if df.Grouped16PerSec, err = probe(dir, 16, d); err != nil {
		return df, err
	}
	return df, nil
}

func probe(dir string, perSync int, d time.Duration) (float64, error) {
	const blk = 4096
	const prealloc = 256 << 20
	f, err := os.CreateTemp(dir, "lossbench-disk-probe-*")
	if err != nil {
		return 0, fmt.Errorf("bench: disk probe: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	defer f.Close()
	zero := make([]byte, 1<<20)
	for off := 0; off < prealloc; off += len(zero) {
		if _, err := f.Write(zero); err != nil {
			return 0, fmt.Errorf("bench: disk probe %s: preallocate: %w", filepath.Base(name), err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("bench: disk probe: sync: %w", err)
	}
	buf := make([]byte, blk)
	for i := range buf {
		buf[i] = byte(i)
	}
	fd := int(f.Fd())
	var writes int
	var off int64
	start := time.Now()
	for time.Since(start) < d {
		for i := 0; i < perSync; i++ {
			if off+blk > prealloc {
				off = 0
			}
			if _, err := unix.Pwrite(fd, buf, off); err != nil {
				return 0, fmt.Errorf("bench: disk probe: write: %w", err)
			}
			off += blk
			writes++
		}
		if err := unix.Fdatasync(fd); err != nil {
			return 0, fmt.Errorf("bench: disk probe: fdatasync: %w", err)
		}
	}
	return float64(writes) / time.Since(start).Seconds(), nil
}
