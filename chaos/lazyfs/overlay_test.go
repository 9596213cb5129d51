package lazyfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOverlayModel runs random writes, truncations, syncs and cuts on an
// overlay over a real file (no FUSE) and checks every read against a
// model: the program's view and the durable view as byte slices.
func TestOverlayModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		testOverlayModel(t, seed)
	}
}

func testOverlayModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(t.TempDir(), "f")
	durable := bytes.Repeat([]byte("D"), rng.IntN(3*pageSize))
	if err := os.WriteFile(path, durable, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ov := newOverlay(1, fd, int64(len(durable)))
	view := append([]byte(nil), durable...)
	check := func(step int, what string) {
		t.Helper()
		buf := make([]byte, len(view)+pageSize)
		n, err := ov.read(buf, 0)
		if err != nil {
			t.Fatalf("seed %d step %d (%s): read: %v", seed, step, what, err)
		}
		if !bytes.Equal(buf[:n], view) {
			t.Fatalf("seed %d step %d (%s): read %d bytes, want %d; first difference at %d",
				seed, step, what, n, len(view), firstDiff(buf[:n], view))
		}
		// An unaligned read in the middle.
		if len(view) > 10 {
			off := rng.IntN(len(view) - 5)
			m := rng.IntN(len(view)-off) + 1
			got := make([]byte, m)
			if k, err := ov.read(got, int64(off)); err != nil || !bytes.Equal(got[:k], view[off:off+m]) {
				t.Fatalf("seed %d step %d (%s): read [%d,+%d): %v", seed, step, what, off, m, err)
			}
		}
	}
	for step := range 200 {
		var what string
		switch r := rng.IntN(100); {
		case r < 55:
			off := rng.IntN(len(view) + 2*pageSize)
			p := bytes.Repeat([]byte{byte('a' + step%26)}, 1+rng.IntN(2*pageSize))
			if err := ov.write(p, int64(off)); err != nil {
				t.Fatal(err)
			}
			if end := off + len(p); end > len(view) {
				view = append(view, make([]byte, end-len(view))...)
			}
			copy(view[off:], p)
			what = "write"
		case r < 70:
			n := rng.IntN(len(view) + 2*pageSize)
			ov.truncate(int64(n))
			if n < len(view) {
				view = view[:n]
			} else {
				view = append(view, make([]byte, n-len(view))...)
			}
			what = "truncate"
		case r < 85:
			if err := ov.sync(rng.IntN(2) == 0); err != nil {
				t.Fatal(err)
			}
			durable = append(durable[:0], view...)
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, durable) {
				t.Fatalf("seed %d step %d: backing file after sync differs (%v) at %d", seed, step, err, firstDiff(got, durable))
			}
			what = "sync"
		default:
			ov.drop()
			view = append(view[:0], durable...)
			what = "drop"
		}
		check(step, what)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
