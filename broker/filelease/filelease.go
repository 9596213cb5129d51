// Package filelease is the shared-storage lock of refbroker --shared:
// several brokers on one data directory (a SAN, a shared network drive);
// the one holding the lease serves, the others stand by and take over when
// the lease is released or has expired. It is a role.Lock.
//
// # Files
//
// Two files in the shared directory:
//
//	shared.lock   flock'ed (exclusive) around every lease transaction: a
//	              takeover, a renewal, a release. Held for milliseconds,
//	              never for a term: a paused or hung master must not keep
//	              the standbys from taking over after its lease.
//	shared.lease  the lease record, read and written only under that lock,
//	              opened and closed each time (on NFS, close-to-open
//	              consistency then shows every reader the last write).
//
// The record has two slots, at offsets 0 and 512 (two sectors), written
// alternately, each with a checksum, so a write torn by a crash leaves the
// previous record readable and the epoch never goes back:
//
//	 0       4       8                16               24    25     26
//	+-------+-------+----------------+----------------+-----+------+---------+
//	| magic | crc32c| version u64le  | epoch u64le    |flags| olen | owner   |
//	| "LBSL"|       |                |                |  u8 |  u8  | olen B  |
//	+-------+-------+----------------+----------------+-----+------+---------+
//	crc = CRC-32C of bytes 8 .. 26+olen; flags bit 0: released
//
// version increases by one with every write (a renewal, a takeover, a
// release); the slot written is version mod 2. The valid slot with the
// higher version is the record; a directory without one is a free lease
// at epoch 0.
//
// # Expiry without synchronised clocks
//
// As for the database lease (broker/lease), nobody compares wall clocks: a
// standby that has seen the same record (version) for TTL on its own
// monotonic clock takes over, inside one transaction, with epoch + 1; a
// released record is taken at once. The master renews every Renew and is
// master only until the start of its last successful renewal plus TTL
// minus Margin (role.Term): it stops acknowledging before any standby can
// take over, and a master paused past that acknowledges nothing when it
// resumes.
package filelease

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/role"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Names of the files in the shared directory; part of the format.
const (
	LockFile  = "shared.lock"
	LeaseFile = "shared.lease"
)

// Record layout; part of the format.
const (
	magic     = "LBSL"
	slotSize  = 512
	headerLen = 26
	// MaxOwner is the longest owner name a record holds.
	MaxOwner = 255
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the error of a lease file in which no slot is
// valid but some are not empty: the epoch cannot be known, so nobody
// takes over.
var ErrCorrupt = errors.New("filelease: lease record corrupt")

// record is the lease as stored.
type record struct {
	version  uint64
	epoch    int64
	released bool
	owner    string
}

// free reports whether a standby may take the lease at once.
func (r record) free() bool { return r.version == 0 || r.released }

func (r record) encode() []byte {
	b := make([]byte, headerLen+len(r.owner))
	copy(b, magic)
	binary.LittleEndian.PutUint64(b[8:], r.version)
	binary.LittleEndian.PutUint64(b[16:], uint64(r.epoch))
	if r.released {
		b[24] = 1
	}
	b[25] = byte(len(r.owner))
	copy(b[headerLen:], r.owner)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	return b
}

// decodeSlot returns the record in a slot; ok is false for an empty or
// invalid slot, empty true for one of zeros only.
func decodeSlot(b []byte) (r record, ok, empty bool) {
	empty = true
	for _, c := range b {
		if c != 0 {
			empty = false
			break
		}
	}
	if empty || len(b) < headerLen || string(b[:4]) != magic {
		return r, false, empty
	}
	n := int(b[25])
	if headerLen+n > len(b) {
		return r, false, false
	}
	if crc32.Checksum(b[8:headerLen+n], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return r, false, false
	}
	r = record{
		version:  binary.LittleEndian.Uint64(b[8:]),
		epoch:    int64(binary.LittleEndian.Uint64(b[16:])),
		released: b[24]&1 != 0,
		owner:    string(b[headerLen : headerLen+n]),
	}
	return r, true, false
}

// decode returns the record of a lease file's contents.
func decode(b []byte) (record, error) {
	var best record
	found, junk := false, false
	for i := 0; i < 2; i++ {
		lo := i * slotSize
		if lo >= len(b) {
			break
		}
		r, ok, empty := decodeSlot(b[lo:min(len(b), lo+slotSize)])
		switch {
		case ok && (!found || r.version > best.version):
			best, found = r, true
		case !ok && !empty:
			junk = true
		}
	}
	if !found && junk {
		return best, fmt.Errorf("%w: no valid slot", ErrCorrupt)
	}
	return best, nil
}

// Options configure a Lease.
type Options struct {
	role.TermOptions
	// FS is the filesystem (nil: vfs.Default); tests wrap it to cut one
	// broker from the storage.
	FS vfs.FS
}

// Lease is one broker's claim on a shared directory's lease. It is
// acquired at most once; after it is lost or released, make a new one.
type Lease struct {
	dir   string
	owner string
	fs    vfs.FS
	o     role.TermOptions
	term  *role.Term

	mu    sync.Mutex
	epoch int64
	seen  string // the holder as last read, for Status
}

var _ role.Lock = (*Lease)(nil)

// New returns a standby lease on dir for owner, a name unique among the
// brokers sharing the directory (at most MaxOwner bytes).
func New(dir, owner string, opts Options) (*Lease, error) {
	if len(owner) > MaxOwner || owner == "" {
		return nil, fmt.Errorf("filelease: owner name %q: want 1 to %d bytes", owner, MaxOwner)
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	term := role.NewTerm(opts.TermOptions)
	return &Lease{dir: dir, owner: owner, fs: fs, o: term.Options(), term: term}, nil
}

func (l *Lease) logf(format string, args ...any) {
	if l.o.Logf != nil {
		l.o.Logf(format, args...)
	}
}

// txn runs fn on the record under the lock file's flock, waiting for the
// flock until ctx ends. fn returns the record to write, or nil.
func (l *Lease) txn(ctx context.Context, fn func(r record) (*record, error)) error {
	var lock io.Closer
	for {
		var err error
		lock, err = l.fs.Lock(filepath.Join(l.dir, LockFile))
		if err == nil {
			break
		}
		if !errors.Is(err, vfs.ErrLocked) {
			return fmt.Errorf("filelease: lock %s: %w", LockFile, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("filelease: lock %s: %w", LockFile, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	defer lock.Close()
	f, err := l.fs.OpenFile(filepath.Join(l.dir, LeaseFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("filelease: open %s: %w", LeaseFile, err)
	}
	buf := make([]byte, 2*slotSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return fmt.Errorf("filelease: read %s: %w", LeaseFile, err)
	}
	r, err := decode(buf[:n])
	if err != nil {
		f.Close()
		return fmt.Errorf("%w (%s)", err, filepath.Join(l.dir, LeaseFile))
	}
	w, err := fn(r)
	if err != nil || w == nil {
		f.Close()
		return err
	}
	w.version = r.version + 1
	if _, err := f.WriteAt(w.encode(), int64(w.version%2)*slotSize); err != nil {
		f.Close()
		return fmt.Errorf("filelease: write %s: %w", LeaseFile, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("filelease: sync %s: %w", LeaseFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("filelease: close %s: %w", LeaseFile, err)
	}
	return nil
}

// errNotMine ends a transaction that found the lease taken.
var errNotMine = errors.New("filelease: the lease is not ours")

// Acquire waits as standby until this broker holds the lease, and returns
// its epoch. It returns ctx's error if ctx ends first, and fails on
// storage errors only while they persist past TTL.
func (l *Lease) Acquire(ctx context.Context) (int64, error) {
	if l.term.Ended() || l.Epoch() != 0 {
		return 0, errors.New("filelease: Acquire on a lease already acquired or lost")
	}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return 0, fmt.Errorf("filelease: create %s: %w", l.dir, err)
	}
	var (
		seen     record
		seenAt   time.Time
		have     bool
		errSince time.Time
	)
	t := time.NewTicker(l.o.Poll)
	defer t.Stop()
	for {
		if l.term.Ended() {
			return 0, errors.New("filelease: released while acquiring")
		}
		var (
			took  bool
			start time.Time
			from  record
		)
		err := l.txn(ctx, func(r record) (*record, error) {
			now := l.o.Clock.Now()
			if !have || r != seen {
				seen, seenAt, have = r, now, true
				l.mu.Lock()
				l.seen = r.owner
				l.mu.Unlock()
			}
			if !r.free() && now.Sub(seenAt) < l.o.TTL {
				return nil, nil
			}
			took, start, from = true, now, r
			return &record{epoch: r.epoch + 1, owner: l.owner}, nil
		})
		now := l.o.Clock.Now()
		switch {
		case err != nil:
			took = false
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if errSince.IsZero() {
				errSince = now
			} else if now.Sub(errSince) > l.o.TTL {
				return 0, err
			}
		case took:
			return l.begin(start, from)
		default:
			errSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// begin starts the term of a takeover from the record from, written after
// start.
func (l *Lease) begin(start time.Time, from record) (int64, error) {
	epoch := from.epoch + 1
	l.mu.Lock()
	l.epoch, l.seen = epoch, l.owner
	l.mu.Unlock()
	if !l.term.Begin(start, l.renew) { // Release was called while we stood by
		err := l.release(epoch)
		l.mu.Lock()
		l.epoch = 0
		l.mu.Unlock()
		return 0, errors.Join(errors.New("filelease: released while acquiring"), err)
	}
	how := "the lease expired"
	if from.free() {
		how = "the lease was free"
	}
	l.logf("filelease: %s is master with epoch %d in %s (%s; was %q, epoch %d)", l.owner, epoch, l.dir, how, from.owner, from.epoch)
	return epoch, nil
}

// renew is the term's role.RenewFunc.
func (l *Lease) renew(ctx context.Context, start time.Time) (taken bool, err error) {
	epoch := l.Epoch()
	err = l.txn(ctx, func(r record) (*record, error) {
		if r.owner != l.owner || r.epoch != epoch || r.released {
			return nil, errNotMine
		}
		return &record{epoch: epoch, owner: l.owner}, nil
	})
	if errors.Is(err, errNotMine) {
		return true, nil
	}
	return false, err
}

// release marks the record of epoch released, if it is still ours.
func (l *Lease) release(epoch int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.o.TTL)
	defer cancel()
	err := l.txn(ctx, func(r record) (*record, error) {
		if r.owner != l.owner || r.epoch != epoch || r.released {
			return nil, nil
		}
		return &record{epoch: epoch, owner: l.owner, released: true}, nil
	})
	if err != nil {
		return fmt.Errorf("filelease: release: %w", err)
	}
	return nil
}

// Held implements role.Lock.
func (l *Lease) Held() bool { return l.term.Held() }

// Lost implements role.Lock.
func (l *Lease) Lost() <-chan struct{} { return l.term.Lost() }

// Epoch implements role.Lock.
func (l *Lease) Epoch() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// Status implements role.Lock.
func (l *Lease) Status() role.Status {
	l.mu.Lock()
	st := role.Status{Owner: l.owner, Holder: l.seen, Epoch: l.epoch}
	l.mu.Unlock()
	return l.term.Status(st)
}

// Release implements role.Lock: the record is marked released, so that a
// standby takes over at once.
func (l *Lease) Release() error {
	l.term.Stop()
	epoch := l.Epoch()
	if epoch == 0 {
		return nil
	}
	return l.release(epoch)
}
