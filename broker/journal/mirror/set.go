package mirror

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// Dir is one copy of the journal: a directory and the filesystem it is
// on (nil: vfs.Default).
type Dir struct {
	Path string
	FS   vfs.FS
}

// Options configure Open.
type Options struct {
	// MinMirrors is the fewest healthy copies a write may be acknowledged
	// with (0 means 1). With fewer the journal fails stop; at Open, copies
	// are rebuilt before the journal opens until there are this many.
	MinMirrors int
	// LockTimeout is journal.Options.LockTimeout, for the lock in the
	// first directory.
	LockTimeout time.Duration
	// Probe is how often each directory is checked to still exist (a disk
	// swapped under the broker); 0 means 250 ms, negative never.
	Probe time.Duration
	// RebuildChunk is how many bytes a rebuild copies at a time while
	// writers wait; 0 means 1 MiB.
	RebuildChunk int
	// Logf receives what the set decided (the copy chosen and why, drops,
	// rebuilds); nil is silent.
	Logf func(format string, args ...any)
}

// Mirror states, as Status reports them.
const (
	Healthy    = "healthy"
	Failed     = "failed"
	Stale      = "stale"
	Rebuilding = "rebuilding"
)

// mirror is one copy.
type mirror struct {
	idx  int
	dir  string
	fs   vfs.FS
	name string // for logs: the directory
	// guarded by Set.mu:
	state          string
	err            error
	why            string // why it is stale
	copied, total  int64  // rebuild progress
	rebuildStarted time.Time
}

// Set is a mirrored journal directory: the journal opens Set.Root on
// Set.FS, which writes every file to each healthy copy.
type Set struct {
	ms    []*mirror
	root  string
	min   int
	opts  Options
	logf  func(string, ...any)
	lock  io.Closer
	setID [16]byte

	mu    sync.Mutex // guards mirror states, gen, order
	gen   uint64
	order []int // read preference: the chosen copy first

	stateMu sync.Mutex   // serialises drops and their state records
	gate    sync.RWMutex // file changes hold it shared; a rebuild's last step exclusively
	paths   [pathLocks]sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

// Status is one copy's state.
type Status = store.MirrorStatus

// Open takes the lock in the first directory, reads every copy's state
// record, verifies the copies that may be used, chooses one, and makes
// every other usable copy identical to it. Stale and new copies are
// emptied and rebuilt: now, while fewer than MinMirrors copies are
// healthy, and otherwise online once Start is called.
func Open(dirs []Dir, opts Options) (*Set, error) {
	if len(dirs) == 0 {
		return nil, errors.New("mirror: no directory")
	}
	if opts.MinMirrors == 0 {
		opts.MinMirrors = 1
	}
	if opts.MinMirrors < 1 || opts.MinMirrors > len(dirs) {
		return nil, fmt.Errorf("mirror: min mirrors %d outside 1 to %d (the directories given)", opts.MinMirrors, len(dirs))
	}
	if opts.Probe == 0 {
		opts.Probe = 250 * time.Millisecond
	}
	if opts.RebuildChunk <= 0 {
		opts.RebuildChunk = 1 << 20
	}
	s := &Set{root: filepath.Clean(dirs[0].Path), min: opts.MinMirrors, opts: opts, logf: opts.Logf}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	seen := map[string]bool{}
	for i, d := range dirs {
		fs := d.FS
		if fs == nil {
			fs = vfs.Default
		}
		p := filepath.Clean(d.Path)
		if seen[p] {
			return nil, fmt.Errorf("mirror: directory %s given twice", p)
		}
		seen[p] = true
		s.ms = append(s.ms, &mirror{idx: i, dir: p, fs: fs, name: p, state: Healthy})
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	first := s.ms[0]
	if err := first.fs.MkdirAll(first.dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: create %s (the first directory holds the lock): %w", first.dir, err)
	}
	lock, err := journal.LockDir(first.fs, first.dir, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.open(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// candidate is a copy that may hold the journal.
type candidate struct {
	m   *mirror
	pos journal.Position
	err error
}

func (s *Set) open() error {
	type found struct {
		rec     record
		has     bool
		journal bool // holds journal files
	}
	fd := make([]found, len(s.ms))
	anyRecord := false
	for i, m := range s.ms {
		if i > 0 {
			if err := m.fs.MkdirAll(m.dir, 0o755); err != nil {
				s.setFailed(m, fmt.Errorf("create: %w", err))
				continue
			}
		}
		names, err := m.fs.List(m.dir)
		if err != nil {
			s.setFailed(m, fmt.Errorf("list: %w", err))
			continue
		}
		fd[i].journal = hasJournalFiles(names)
		rec, has, err := readRecord(m.fs, m.dir)
		switch {
		case err != nil && has:
			s.setStale(m, fmt.Sprintf("its state record is unreadable (%v)", err))
		case err != nil:
			s.setFailed(m, fmt.Errorf("read state record: %w", err))
		case has:
			fd[i].rec, fd[i].has, anyRecord = rec, true, true
		}
	}
	// Every record must be of one set: a directory of another journal is
	// refused, never wiped.
	var setID [16]byte
	haveID := false
	for i, f := range fd {
		if !f.has {
			continue
		}
		if haveID && f.rec.set != setID {
			return fmt.Errorf("mirror: %s belongs to another mirrored journal than %s: refusing to use or overwrite it", s.ms[i].dir, s.ms[0].dir)
		}
		setID, haveID = f.rec.set, true
	}
	var cands []*candidate
	if !anyRecord {
		// A new set, or a journal that had one directory.
		if _, err := rand.Read(s.setID[:]); err != nil {
			return fmt.Errorf("mirror: set id: %w", err)
		}
		s.gen = 1
		for i, m := range s.ms {
			switch {
			case m.state != Healthy:
			case fd[i].journal:
				cands = append(cands, &candidate{m: m})
			default:
				s.setStale(m, "new (empty)")
			}
		}
		if len(cands) == 0 { // all new: nothing to copy
			for _, m := range s.ms {
				if m.state == Stale {
					m.state, m.why = Healthy, ""
				}
			}
		}
	} else {
		s.setID = setID
		for _, f := range fd {
			if f.has && f.rec.state == recHealthy {
				s.gen = max(s.gen, f.rec.gen)
			}
		}
		for i, m := range s.ms {
			f := fd[i]
			switch {
			case m.state != Healthy:
			case !f.has && f.journal:
				return fmt.Errorf("mirror: %s holds journal files but no mirror state record: it is not a copy of this journal (empty it to make it a new copy)", m.dir)
			case !f.has:
				s.setStale(m, "new (empty)")
			case f.rec.state == recStale:
				s.setStale(m, "marked stale (dropped or being rebuilt)")
			case f.rec.gen < s.gen:
				s.setStale(m, fmt.Sprintf("generation %d, older than %d: dropped while the others went on", f.rec.gen, s.gen))
			default:
				cands = append(cands, &candidate{m: m})
			}
		}
		if len(cands) == 0 {
			return fmt.Errorf("mirror: no healthy copy of the journal in %s: %s", s.dirList(), s.describe())
		}
	}
	// The usual case, after a clean stop: every copy identical to the
	// first. Comparing reads each copy once; then there is nothing to
	// choose (no Verify: journal.Open replays the copy and refuses it as
	// Verify would) and nothing to copy.
	same := len(cands) > 1 && sameCopies(cands, s.opts.RebuildChunk)
	var src *mirror
	switch {
	case same:
		src = cands[0].m
		s.logf("journal mirror: recovering from %s (generation %d): the %d copies are identical%s", src.dir, s.gen, len(cands), s.staleNote())
	case len(cands) > 0:
		var err error
		if src, err = s.choose(cands); err != nil {
			return err
		}
	}
	s.order = []int{}
	if src != nil {
		s.order = append(s.order, src.idx)
	}
	for _, m := range s.ms {
		if m != src {
			s.order = append(s.order, m.idx)
		}
	}
	// Make the other usable copies identical to the chosen one.
	for _, c := range cands {
		if same || c.m == src || c.m.state != Healthy {
			continue
		}
		n, err := syncCopy(src, c.m, s.opts.RebuildChunk)
		if err != nil {
			s.setFailed(c.m, fmt.Errorf("copy from %s: %w", src.dir, err))
			continue
		}
		if n > 0 {
			s.logf("journal mirror: %s made identical to %s (%d files copied)", c.m.dir, src.dir, n)
		}
	}
	// Every healthy copy records the set and generation; every stale one
	// is marked stale before it is emptied.
	for _, m := range s.ms {
		var err error
		switch m.state {
		case Healthy:
			err = writeRecord(m.fs, m.dir, record{state: recHealthy, set: s.setID, gen: s.gen})
		case Stale:
			err = s.empty(m)
		}
		if err != nil {
			s.setFailed(m, err)
		}
	}
	if s.healthy() == 0 {
		return fmt.Errorf("mirror: no usable copy of the journal in %s: %s", s.dirList(), s.describe())
	}
	// Below the minimum, the rebuild runs before the journal opens.
	for _, m := range s.ms {
		if s.healthy() >= s.min {
			break
		}
		if m.state == Stale {
			if err := s.rebuild(m); err != nil {
				s.logf("journal mirror: rebuild of %s failed: %v", m.dir, err)
			}
		}
	}
	if h := s.healthy(); h < s.min {
		return fmt.Errorf("mirror: %d healthy copies, fewer than --min-mirrors %d: %s", h, s.min, s.describe())
	}
	return nil
}

// choose verifies each candidate, when there are several, and returns
// the one whose log goes furthest. Every copy that was healthy when a write was acknowledged
// holds it, so any valid candidate holds everything acknowledged; the
// furthest also keeps what was written to it alone before a crash.
func (s *Set) choose(cands []*candidate) (*mirror, error) {
	if len(cands) == 1 {
		// Nothing to choose from: no Verify, since journal.Open replays
		// this copy anyway (and refuses it as Verify would).
		s.logf("journal mirror: recovering from %s (generation %d): the only healthy copy%s", cands[0].m.dir, s.gen, s.staleNote())
		return cands[0].m, nil
	}
	var best *candidate
	for _, c := range cands {
		c.pos, c.err = journal.Verify(c.m.dir, journal.Options{FS: c.m.fs})
		if c.err != nil {
			s.logf("journal mirror: %s is not usable: %v", c.m.dir, c.err)
			continue
		}
		if best == nil || best.pos.Less(c.pos) {
			best = c
		}
	}
	if best == nil {
		// No valid copy: Open fails on the first as on a single directory
		// (or repairs it with --repair, and the others follow it).
		s.logf("journal mirror: no copy verifies; going on with %s as a single journal would", cands[0].m.dir)
		return cands[0].m, nil
	}
	var why []string
	for _, c := range cands {
		switch {
		case c == best:
		case c.err != nil:
			why = append(why, fmt.Sprintf("%s is corrupt (%v)", c.m.dir, c.err))
		case c.pos.Less(best.pos):
			why = append(why, fmt.Sprintf("%s ends earlier (%v; a crash came between the writes to the copies)", c.m.dir, c.pos))
		default:
			why = append(why, fmt.Sprintf("%s is the same", c.m.dir))
		}
	}
	s.logf("journal mirror: recovering from %s (generation %d, %v): %s%s", best.m.dir, s.gen, best.pos, strings.Join(why, "; "), s.staleNote())
	return best.m, nil
}

// staleNote lists, for the log, the copies not used and why.
func (s *Set) staleNote() string {
	var note string
	for _, m := range s.ms {
		if m.state == Stale {
			note += fmt.Sprintf("; %s not used: %s", m.dir, m.why)
		}
	}
	return note
}

// empty marks m stale and removes its journal files, for a rebuild.
func (s *Set) empty(m *mirror) error {
	if err := writeRecord(m.fs, m.dir, record{state: recStale, set: s.setID, gen: s.gen}); err != nil {
		return err
	}
	names, err := m.fs.List(m.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, n := range names {
		if skipName(n) {
			continue
		}
		if err := m.fs.Remove(filepath.Join(m.dir, n)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("empty: %w", err)
		}
	}
	return m.fs.SyncDir(m.dir)
}

// skipName says which files are not part of the journal's copy.
func skipName(n string) bool {
	return n == "LOCK" || n == stateName || n == stateName+".tmp"
}

func hasJournalFiles(names []string) bool {
	for _, n := range names {
		if n == "MANIFEST" || strings.HasSuffix(n, ".log") {
			return true
		}
	}
	return false
}

func (s *Set) setFailed(m *mirror, err error) {
	s.mu.Lock()
	m.state, m.err = Failed, err
	s.mu.Unlock()
	s.logf("journal mirror: %s failed: %v", m.dir, err)
}

func (s *Set) setStale(m *mirror, why string) {
	s.mu.Lock()
	m.state, m.why = Stale, why
	s.mu.Unlock()
}

func (s *Set) dirList() string {
	var ds []string
	for _, m := range s.ms {
		ds = append(ds, m.dir)
	}
	return strings.Join(ds, ", ")
}

func (s *Set) describe() string {
	var out []string
	for _, st := range s.Status() {
		d := st.Dir + " " + st.State
		if st.Error != "" {
			d += " (" + st.Error + ")"
		}
		out = append(out, d)
	}
	return strings.Join(out, ", ")
}

// healthy counts the healthy copies.
func (s *Set) healthy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.ms {
		if m.state == Healthy {
			n++
		}
	}
	return n
}

// Count returns the healthy copies and all copies.
func (s *Set) Count() (healthy, total int) { return s.healthy(), len(s.ms) }

// Status returns each copy's state, in the order the directories were
// given.
func (s *Set) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.ms))
	for i, m := range s.ms {
		st := Status{Dir: m.dir, State: m.state}
		switch {
		case m.err != nil:
			st.Error = m.err.Error()
		case m.state == Stale:
			st.Error = m.why
		}
		if m.state == Rebuilding {
			// A file that grew since the rebuild listed it is copied whole.
			st.CopiedBytes, st.TotalBytes = m.copied, max(m.total, m.copied)
		}
		out[i] = st
	}
	return out
}

// Root is the directory the journal opens on FS: the first one.
func (s *Set) Root() string { return s.root }

// drop takes a copy that failed out of the set: it is no longer written
// or read. When it was healthy, every remaining healthy copy records a
// new generation before drop returns, so that the dropped copy, which
// misses what comes next, is known stale at the next Open even if it
// cannot be marked itself. A failed fsync is never retried: the copy is
// not used again until it is rebuilt.
func (s *Set) drop(m *mirror, err error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.mu.Lock()
	was := m.state
	if was == Failed {
		s.mu.Unlock()
		return
	}
	m.state, m.err = Failed, err
	s.mu.Unlock()
	h, t := s.Count()
	s.logf("journal mirror: ALARM: %s failed (%v): dropped; %d of %d copies healthy", m.dir, err, h, t)
	if was != Healthy {
		return
	}
	for {
		s.mu.Lock()
		gen := s.gen + 1
		var live []*mirror
		for _, o := range s.ms {
			if o.state == Healthy {
				live = append(live, o)
			}
		}
		s.mu.Unlock()
		if len(live) == 0 {
			return
		}
		again := false
		for _, o := range live {
			if werr := writeRecord(o.fs, o.dir, record{state: recHealthy, set: s.setID, gen: gen}); werr != nil {
				s.mu.Lock()
				o.state, o.err = Failed, werr
				s.mu.Unlock()
				s.logf("journal mirror: ALARM: %s failed (%v): dropped", o.dir, werr)
				again = true
			}
		}
		s.mu.Lock()
		s.gen = gen
		s.mu.Unlock()
		if !again {
			break
		}
	}
	// Best effort: the failed copy may still take its own stale mark
	// (a transient error), which keeps it from being used even if every
	// other copy is lost later. A disk that hangs is not waited for long.
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- writeRecord(m.fs, m.dir, record{state: recStale, set: s.setID, gen: gen}) }()
	select {
	case err := <-done:
		if err != nil {
			s.logf("journal mirror: %s cannot be marked stale itself (%v): the other copies' generation %d says it is", m.dir, err, gen)
		}
	case <-time.After(staleMarkWait):
	}
}

// staleMarkWait bounds how long a drop waits for the failed copy to take
// its stale mark.
const staleMarkWait = time.Second

// check returns an error when fewer than MinMirrors copies are healthy:
// nothing may be acknowledged then.
func (s *Set) check(cause error) error {
	h, t := s.Count()
	if h >= s.min {
		return nil
	}
	if cause == nil {
		cause = errors.New("copies dropped")
	}
	if h == 0 {
		return fmt.Errorf("journal mirrors: every copy failed (%d): %w", t, cause)
	}
	return fmt.Errorf("journal mirrors: %d of %d copies healthy, fewer than --min-mirrors %d: %w", h, t, s.min, cause)
}

// Start rebuilds stale copies in the background and watches that every
// directory is still there.
func (s *Set) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, m := range s.ms {
			if s.ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			stale := m.state == Stale
			s.mu.Unlock()
			if stale {
				if err := s.rebuild(m); err != nil && s.ctx.Err() == nil {
					s.logf("journal mirror: rebuild of %s failed: %v", m.dir, err)
				}
			}
		}
	}()
	if s.opts.Probe > 0 {
		s.wg.Add(1)
		go s.probe()
	}
}

// probe drops a copy whose directory is gone (a disk swapped or wiped
// under the broker: writes to the files it has open still succeed).
func (s *Set) probe() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Probe)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		for _, m := range s.ms {
			s.mu.Lock()
			st := m.state
			s.mu.Unlock()
			if st != Healthy && st != Rebuilding {
				continue
			}
			if _, err := m.fs.Stat(filepath.Join(m.dir, stateName)); err != nil {
				s.drop(m, fmt.Errorf("directory gone: %w", err))
			}
		}
	}
}

// Close stops the rebuild and the probe and releases the lock.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return s.lock.Close()
}
