package filelease

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/role/locktest"
	"github.com/lossbench/lossbench/broker/vfs"
	"github.com/lossbench/lossbench/broker/vfs/errorfs"
)

// TestLockConformance runs role's lock suite on the file lease, each
// contender through its own filesystem; Cut fails every operation of one
// contender with EIO, as a broker cut off from the shared storage sees
// it, while the others still reach it.
func TestLockConformance(t *testing.T) {
	locktest.Run(t, func(t *testing.T) locktest.Pool { return &pool{dir: t.TempDir()} })
}

type pool struct {
	dir  string
	mu   sync.Mutex
	cuts map[string]*errorfs.Switch
}

func (p *pool) New(t *testing.T, owner string, o role.TermOptions) role.Lock {
	sw := &errorfs.Switch{Injector: errorfs.InjectorFunc(func(op *errorfs.Op) error {
		return &os.PathError{Op: op.Kind.String(), Path: op.Path, Err: syscall.EIO}
	})}
	p.mu.Lock()
	if p.cuts == nil {
		p.cuts = map[string]*errorfs.Switch{}
	}
	p.cuts[owner] = sw
	p.mu.Unlock()
	l, err := New(p.dir, owner, Options{TermOptions: o, FS: errorfs.Wrap(vfs.Default, sw)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

func (p *pool) Cut(t *testing.T, owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts[owner].On()
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{version: 1, epoch: 1, owner: "a"},
		{version: 7, epoch: 1 << 40, owner: string(make([]byte, MaxOwner)), released: true},
	} {
		b := make([]byte, 2*slotSize)
		copy(b[(r.version%2)*slotSize:], r.encode())
		got, err := decode(b)
		if err != nil || got != r {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", r, got, err)
		}
	}
}

// TestTornSlot: a write torn by a crash damages one slot; the other still
// holds the previous record, so the epoch does not go back.
func TestTornSlot(t *testing.T) {
	b := make([]byte, 2*slotSize)
	old := record{version: 4, epoch: 3, owner: "a"}
	copy(b[0:], old.encode())
	next := record{version: 5, epoch: 4, owner: "b"}.encode()
	copy(b[slotSize:], next[:headerLen-3]) // torn
	got, err := decode(b)
	if err != nil || got != old {
		t.Fatalf("decode with a torn newer slot = %+v, %v; want %+v", got, err, old)
	}
	copy(b[0:], make([]byte, 8)) // and the older one damaged too
	b[1] = 9
	if _, err := decode(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decode with both slots damaged = %v, want ErrCorrupt", err)
	}
	if r, err := decode(nil); err != nil || !r.free() || r.epoch != 0 {
		t.Fatalf("decode of an empty file = %+v, %v", r, err)
	}
}

// TestCorruptRecordRefusesTakeover: a lease file whose slots are both
// damaged is not taken over (the epoch cannot be known); Acquire fails
// once the error has lasted the TTL, naming the file.
func TestCorruptRecordRefusesTakeover(t *testing.T) {
	dir := t.TempDir()
	junk := make([]byte, 2*slotSize)
	for i := range junk {
		junk[i] = 0xa5
	}
	if err := os.WriteFile(filepath.Join(dir, LeaseFile), junk, 0o644); err != nil {
		t.Fatal(err)
	}
	clock := locktest.NewClock()
	o := locktest.Timings
	o.Clock = clock
	l, err := New(dir, "a", Options{TermOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := l.Acquire(context.Background()); done <- err }()
	for {
		select {
		case err := <-done:
			if !errors.Is(err, ErrCorrupt) || l.Held() {
				t.Fatalf("Acquire on a corrupt lease = %v (held %v), want ErrCorrupt", err, l.Held())
			}
			return
		default:
			clock.Advance(locktest.Step)
		}
	}
}

func TestOwnerName(t *testing.T) {
	if _, err := New(t.TempDir(), "", Options{}); err == nil {
		t.Fatal("empty owner accepted")
	}
	if _, err := New(t.TempDir(), string(make([]byte, MaxOwner+1)), Options{}); err == nil {
		t.Fatal("owner longer than a record holds accepted")
	}
}

// FuzzDecode: any lease file decodes to a record or an error, never a
// panic; a record decoded re-encodes to the same slot.
func FuzzDecode(f *testing.F) {
	f.Add(record{version: 1, epoch: 1, owner: "a"}.encode())
	f.Add(make([]byte, 2*slotSize))
	f.Add([]byte("LBSL"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil || r.version == 0 {
			return
		}
		buf := make([]byte, 2*slotSize)
		copy(buf[(r.version%2)*slotSize:], r.encode())
		if again, err := decode(buf); err != nil || again != r {
			t.Fatalf("re-decode of %+v = %+v, %v", r, again, err)
		}
	})
}
