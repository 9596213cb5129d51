package osutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// FillName is the file Fill writes in a folder.
const FillName = ".lossbench-fill"

// Fill writes the file FillName in dir until its filesystem is full
// (ENOSPC), topping off the last partial block with smaller writes; the
// disk-full fault of every driver. Unfill removes the file.
func Fill(ctx context.Context, dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, FillName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for ctx.Err() == nil {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return err
			}
			for len(buf) > 512 {
				buf = buf[:len(buf)/2]
				for {
					if _, err := f.Write(buf); err != nil {
						break
					}
				}
			}
			return nil
		}
	}
	return ctx.Err()
}

// Unfill removes what Fill wrote in dir; nothing there is not an error.
func Unfill(dir string) error {
	if err := os.Remove(filepath.Join(dir, FillName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
