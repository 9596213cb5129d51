package lazyfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

// BlockSize is the unit Corrupt damages.
const BlockSize = 4096

// ErrNoFile is wrapped by Corrupt's error when no non-empty file matches.
var ErrNoFile = errors.New("lazyfs: no file to corrupt")

// Corruption says what Corrupt damaged.
type Corruption struct {
	// File is the damaged file, relative to the directory.
	File string
	// Block is the block's index; Offset and Len its bytes.
	Block       int64
	Offset, Len int64
}

func (c Corruption) String() string {
	return fmt.Sprintf("%s block %d (bytes %d-%d)", c.File, c.Block, c.Offset, c.Offset+c.Len-1)
}

// Corrupt damages one block of one file at rest under dir (CORDS-style):
// every bit of the block is flipped, so no byte of it keeps its value and
// nothing else changes. The file is the one of the non-empty regular
// files matching glob (ErrorRule's matching, relative to dir) chosen by
// seed, in name order; block is its block index, or, when negative, one
// chosen by seed. Run it while nothing has the files open (the broker
// stopped): it writes the backing files directly.
func Corrupt(dir, glob string, block int64, seed uint64) (Corruption, error) {
	rule := ErrorRule{Pattern: glob}
	var files []string
	sizes := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 0 && rule.matches(rel) {
			files = append(files, rel)
			sizes[rel] = info.Size()
		}
		return nil
	})
	if err != nil {
		return Corruption{}, fmt.Errorf("lazyfs: corrupt %s: %w", dir, err)
	}
	if len(files) == 0 {
		return Corruption{}, fmt.Errorf("%w: nothing non-empty matches %q under %s", ErrNoFile, glob, dir)
	}
	sort.Strings(files)
	rnd := rand.New(rand.NewPCG(seed, ^seed))
	c := Corruption{File: files[rnd.IntN(len(files))]}
	size := sizes[c.File]
	blocks := (size + BlockSize - 1) / BlockSize
	c.Block = block
	if block < 0 {
		c.Block = rnd.Int64N(blocks)
	} else if block >= blocks {
		return Corruption{}, fmt.Errorf("lazyfs: corrupt %s: block %d is past its end (%d bytes, %d blocks of %d)",
			filepath.Join(dir, c.File), block, size, blocks, BlockSize)
	}
	c.Offset = c.Block * BlockSize
	c.Len = min(BlockSize, size-c.Offset)
	f, err := os.OpenFile(filepath.Join(dir, c.File), os.O_RDWR, 0)
	if err != nil {
		return Corruption{}, fmt.Errorf("lazyfs: corrupt: %w", err)
	}
	defer f.Close()
	buf := make([]byte, c.Len)
	if _, err := f.ReadAt(buf, c.Offset); err != nil {
		return Corruption{}, fmt.Errorf("lazyfs: corrupt %s: read: %w", c.File, err)
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	if _, err := f.WriteAt(buf, c.Offset); err != nil {
		return Corruption{}, fmt.Errorf("lazyfs: corrupt %s: write: %w", c.File, err)
	}
	if err := f.Sync(); err != nil {
		return Corruption{}, fmt.Errorf("lazyfs: corrupt %s: sync: %w", c.File, err)
	}
	return c, nil
}
