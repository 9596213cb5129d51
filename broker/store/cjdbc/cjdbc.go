package cjdbc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// Policy says when a Write returns (and so when the broker sends its
// RECEIPT).
type Policy int

// The write policies.
const (
	// All: once every database enabled when the group was dispatched has
	// committed it or been disabled, and at least MinDatabases committed.
	All Policy = iota
	// Majority: once more than half of the configured databases committed.
	Majority
	// First: once one database committed; the others follow.
	First
)

// ParsePolicy parses "all", "majority" or "first".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "all", "":
		return All, nil
	case "majority":
		return Majority, nil
	case "first":
		return First, nil
	}
	return 0, fmt.Errorf("cjdbc: write policy %q is not all, majority or first", s)
}

func (p Policy) String() string {
	return [...]string{"all", "majority", "first"}[p]
}

// Database is one database of the set.
type Database struct {
	// Name identifies it in logs and statistics, e.g. "postgres 127.0.0.1:5432/x".
	Name string
	// Open connects to it.
	Open Opener
}

// Defaults for Options.
const (
	DefaultRetry  = time.Second
	DefaultMaxLag = 1024
)

// Options configures Open.
type Options struct {
	// Databases are the databases every write goes to, at least one.
	Databases []Database
	// Policy decides when a Write returns.
	Policy Policy
	// MinDatabases is how many must stay enabled for the store to go on
	// acknowledging (0: 1). Below it the store fails.
	MinDatabases int
	// Retry is how often a disabled database is tried again (0: DefaultRetry).
	Retry time.Duration
	// MaxLag is how many groups an enabled database may be behind before
	// Write waits for it (0: DefaultMaxLag). It bounds the memory held for
	// a slow database under the policies first and majority.
	MaxLag int
	// OpenTimeout bounds one attempt to connect to a database (0: 30 s).
	OpenTimeout time.Duration
	// Logf reports databases disabled, resynchronised and enabled.
	Logf func(string, ...any)
}

// The states of a database, as /status shows them (db_<i>_state).
const (
	Disabled = 0 // failed or unreachable: gets no writes
	Syncing  = 1 // being copied to and catching up: gets writes, does not count
	Enabled  = 2 // gets writes and counts for the write policy
)

// maxApply is the most groups one transaction of a database applies.
const maxApply = 256

// catchUp is how few groups a syncing database may still have to replay
// when it is enabled: under steady load its queue rarely empties. The
// groups left were not counted for it; every later one is.
const catchUp = 4

// seqGap is how many seqs each Open skips past the highest it finds, as in
// sqlstore: a commit of an earlier session still on its way must not
// collide with this session's seqs.
const seqGap = 1 << 32

// Store is a store.Store over several databases (see the package doc).
type Store struct {
	opts   Options
	reqs   chan *request
	wdone  chan struct{}
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	bg     sync.WaitGroup // appliers and reconnectors

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a database applies a group or changes state
	members []*member
	failed  error
	closed  bool
	group   uint64 // last group dispatched
	high    uint64 // highest seq handed out in a dispatched group
	liveN   int    // unacknowledged messages as of the last group

	// Owned by the writer goroutine (and Open).
	next uint64
	live map[uint64]struct{}
}

type member struct {
	i       int
	name    string
	open    Opener
	db      DB // nil while disconnected
	state   int
	queue   []*dispatch
	applied uint64 // last group committed
	err     error
	resyncs int
	fails   int
	stopped chan struct{} // closed when its applier has exited
}

type request struct {
	b    *store.Batch
	done chan error
}

// dispatch is one group on its way to the databases.
type dispatch struct {
	g       *Group
	reqs    []*request
	counted map[int]bool // members whose outcome decides it

	// Under Store.mu.
	oks, fail int
	need      int
	resolved  bool
}

// Open connects to the databases, copies the most advanced one's content to
// any that is behind, and starts the writer. It needs enough databases to
// be sure one holds every acknowledged write (see the package doc).
func Open(ctx context.Context, opts Options) (*Store, error) {
	n := len(opts.Databases)
	if n == 0 {
		return nil, errors.New("cjdbc: no databases")
	}
	if opts.MinDatabases <= 0 {
		opts.MinDatabases = 1
	}
	if opts.MinDatabases > n {
		return nil, fmt.Errorf("cjdbc: min-databases %d is more than the %d databases", opts.MinDatabases, n)
	}
	if opts.Policy == Majority && opts.MinDatabases < n/2+1 {
		opts.MinDatabases = n/2 + 1 // a majority cannot commit with fewer
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.MaxLag <= 0 {
		opts.MaxLag = DefaultMaxLag
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = 30 * time.Second
	}
	s := &Store{opts: opts, reqs: make(chan *request, 1024), wdone: make(chan struct{}), live: map[uint64]struct{}{}}
	s.cond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	states := make([]State, n)
	for _, d := range opts.Databases {
		s.members = append(s.members, &member{i: len(s.members), name: d.Name, open: d.Open})
	}
	// Databases starting up at the same time as the broker: try those not
	// reached yet until enough answer or ctx ends.
	var errs []error
	reachable := 0
	for {
		errs = errs[:0]
		for i, m := range s.members {
			if m.db != nil {
				continue
			}
			octx, cancel := context.WithTimeout(ctx, opts.OpenTimeout)
			db, err := m.open(octx)
			if err == nil {
				states[i], err = db.State(octx)
				if err != nil {
					db.Close()
				}
			}
			cancel()
			if err != nil {
				m.err = err
				errs = append(errs, fmt.Errorf("database %d (%s): %w", i, m.name, err))
				continue
			}
			m.db, m.err = db, nil
			reachable++
		}
		if reachable >= s.needAtOpen() || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(opts.Retry):
		}
	}
	fail := func(err error) (*Store, error) {
		for _, m := range s.members {
			if m.db != nil {
				m.db.Close()
			}
		}
		s.cancel()
		return nil, err
	}
	if want := s.needAtOpen(); reachable < want {
		return fail(fmt.Errorf("cjdbc: %d of %d databases reachable, need %d to be sure one holds every acknowledged write (policy %s, min-databases %d): %w",
			reachable, n, want, opts.Policy, opts.MinDatabases, errors.Join(errs...)))
	}
	// The source is the most advanced database; those behind get its copy.
	src := -1
	var high uint64
	for i, m := range s.members {
		if m.db == nil {
			continue
		}
		high = max(high, states[i].High)
		if src < 0 || states[i].Applied > states[src].Applied {
			src = i
		}
	}
	sm := s.members[src]
	for i, m := range s.members {
		if m.db == nil {
			continue
		}
		if i != src && states[i].Applied != states[src].Applied {
			s.logf("cjdbc: database %d (%s) is at group %d, database %d (%s) at %d: copying it over",
				i, m.name, states[i].Applied, src, sm.name, states[src].Applied)
			err := m.db.Replace(ctx, states[src].Applied, states[src].High, func(fn func(*store.Message) error) error {
				return sm.db.Scan(ctx, fn)
			})
			if err != nil {
				return fail(fmt.Errorf("cjdbc: resynchronise database %d (%s) from %d (%s): %w", i, m.name, src, sm.name, err))
			}
			m.resyncs++
		}
		m.state, m.applied = Enabled, states[src].Applied
	}
	for _, seq := range states[src].Live {
		s.live[seq] = struct{}{}
	}
	s.group, s.liveN = states[src].Applied, len(s.live)
	s.next = high + 1 + seqGap
	s.high = s.next - 1
	for _, m := range s.members {
		if m.state == Enabled {
			s.startApplier(m, 0)
		} else {
			s.logf("cjdbc: database %d (%s) disabled at start: %v", m.i, m.name, m.err)
			s.startReconnect(m)
		}
	}
	go s.writer()
	s.logf("cjdbc: open: %d of %d databases enabled, policy %s, min-databases %d, group %d, %d unacknowledged messages, next seq %d",
		reachable, n, opts.Policy, opts.MinDatabases, s.group, len(s.live), s.next)
	return s, nil
}

// needAtOpen is how many databases Open must reach so that at least one
// of them holds every acknowledged write: with q databases holding each
// acknowledged write, n-q+1 of n intersect every such set.
func (s *Store) needAtOpen() int {
	n := len(s.opts.Databases)
	q := 1
	switch s.opts.Policy {
	case All:
		q = s.opts.MinDatabases
	case Majority:
		q = n/2 + 1
	}
	return n - q + 1
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Name implements store.Namer.
func (s *Store) Name() string { return "cjdbc/" + s.opts.Policy.String() }

// Recover implements store.Store: from the database read from.
func (s *Store) Recover(ctx context.Context, fn func(*store.Message) error) error {
	db, err := s.readDB()
	if err != nil {
		return err
	}
	return db.Recover(ctx, fn)
}

// readDB is the enabled database that applied the most groups, its
// handle taken under mu (disableLocked clears it).
func (s *Store) readDB() (DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	if best := s.mostAppliedLocked(); best != nil {
		return best.db, nil
	}
	return nil, fmt.Errorf("%w: cjdbc: no database enabled", store.ErrFailed)
}

// mostAppliedLocked is the enabled member that applied the most groups,
// or nil.
func (s *Store) mostAppliedLocked() *member {
	var best *member
	for _, m := range s.members {
		if m.state == Enabled && (best == nil || m.applied > best.applied) {
			best = m
		}
	}
	return best
}

// Load implements store.Loader: from the enabled database that applied
// the most groups. A Write returned once some database committed its
// group (under any policy), and databases apply groups in order, so that
// one holds every acknowledged add and ack.
func (s *Store) Load(ctx context.Context, seq uint64) ([]byte, error) {
	db, err := s.readDB()
	if err != nil {
		return nil, err
	}
	return db.Load(ctx, seq)
}

// Write implements store.Store.
func (s *Store) Write(ctx context.Context, b *store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	if len(b.Adds) == 0 && len(b.Acks) == 0 {
		return nil
	}
	r := &request{b: b, done: make(chan error, 1)}
	// reqs is closed only by Close after it set closed under mu and the
	// writer drained; a send racing Close is caught by the recover.
	if err := s.send(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) send(ctx context.Context, r *request) (err error) {
	defer func() {
		if recover() != nil {
			err = store.ErrClosed
		}
	}()
	select {
	case s.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the writer after the groups under way, and closes the
// databases.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.reqs)
	<-s.wdone
	s.cancel()
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
	s.bg.Wait()
	var err error
	for _, m := range s.members {
		if m.db != nil {
			if cerr := m.db.Close(); err == nil {
				err = cerr
			}
			m.db = nil
		}
	}
	return err
}

// fail fails the store for good (under mu).
func (s *Store) failLocked(err error) {
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", store.ErrFailed, err)
		s.logf("cjdbc: store failed: %v", err)
		s.cond.Broadcast()
	}
}

func (s *Store) enabledLocked() int {
	n := 0
	for _, m := range s.members {
		if m.state == Enabled {
			n++
		}
	}
	return n
}

// writer forms groups from waiting Writes, assigns seqs, and hands each
// group to every enabled or syncing database in the same order.
func (s *Store) writer() {
	defer close(s.wdone)
	for first := range s.reqs {
		group := []*request{first}
	drain:
		for len(group) < 1000 {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		s.dispatch(group)
	}
	// Wait for the databases to apply what was dispatched.
	s.mu.Lock()
	for {
		busy := false
		for _, m := range s.members {
			if m.state != Disabled && len(m.queue) > 0 {
				busy = true
			}
		}
		if !busy || s.failed != nil {
			break
		}
		s.cond.Wait()
	}
	s.mu.Unlock()
}

func (s *Store) dispatch(group []*request) {
	s.mu.Lock()
	// Back-pressure: no enabled database more than MaxLag groups behind.
	for s.failed == nil {
		slow := false
		for _, m := range s.members {
			if m.state == Enabled && len(m.queue) >= s.opts.MaxLag {
				slow = true
			}
		}
		if !slow {
			break
		}
		s.cond.Wait()
	}
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		for _, r := range group {
			r.done <- err
		}
		return
	}
	s.mu.Unlock()

	g := &Group{}
	d := &dispatch{g: g, counted: map[int]bool{}}
	added := map[uint64]int{}
	for _, r := range group {
		if err := store.CheckAcks("cjdbc", r.b.Acks, s.live); err != nil {
			r.done <- err
			continue
		}
		d.reqs = append(d.reqs, r)
		for _, seq := range r.b.Acks {
			delete(s.live, seq)
			if i, ok := added[seq]; ok {
				g.Adds[i] = nil // added and acknowledged in one group: never written
				continue
			}
			g.Acks = append(g.Acks, seq)
		}
		for _, m := range r.b.Adds {
			m.Seq = s.next
			s.next++
			m.Size = len(m.Body)
			s.live[m.Seq] = struct{}{}
			added[m.Seq] = len(g.Adds)
			g.Adds = append(g.Adds, m)
		}
	}
	if len(d.reqs) == 0 {
		return
	}
	j := 0
	for _, m := range g.Adds {
		if m != nil {
			g.Adds[j] = m
			j++
		}
	}
	g.Adds = g.Adds[:j]
	g.High = s.next - 1

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		for _, r := range d.reqs {
			r.done <- s.failed
		}
		return
	}
	enabled := s.enabledLocked()
	if enabled < s.opts.MinDatabases {
		s.failLocked(fmt.Errorf("cjdbc: %d of %d databases enabled, below min-databases %d", enabled, len(s.members), s.opts.MinDatabases))
		for _, r := range d.reqs {
			r.done <- s.failed
		}
		return
	}
	s.group++
	g.N = s.group
	s.high = g.High
	s.liveN = len(s.live)
	switch s.opts.Policy {
	case All:
		d.need = enabled
	case Majority:
		d.need = len(s.members)/2 + 1
	case First:
		d.need = 1
	}
	for _, m := range s.members {
		switch m.state {
		case Enabled:
			d.counted[m.i] = true
			m.queue = append(m.queue, d)
		case Syncing:
			m.queue = append(m.queue, d)
		}
	}
	s.cond.Broadcast()
}

// report records one counted database's outcome of d (under s.mu).
func (s *Store) reportLocked(d *dispatch, ok bool) {
	if ok {
		d.oks++
	} else {
		d.fail++
	}
	if d.resolved {
		return
	}
	remaining := len(d.counted) - d.oks - d.fail
	var done bool
	var err error
	switch s.opts.Policy {
	case All:
		if remaining == 0 {
			done = true
			if d.oks < s.opts.MinDatabases {
				err = fmt.Errorf("cjdbc: group %d committed on %d databases, below min-databases %d", d.g.N, d.oks, s.opts.MinDatabases)
			}
		}
	default:
		if d.oks >= d.need {
			done = true
		} else if d.oks+remaining < d.need {
			done = true
			err = fmt.Errorf("cjdbc: group %d committed on %d databases, policy %s needs %d", d.g.N, d.oks, s.opts.Policy, d.need)
		}
	}
	if !done {
		return
	}
	d.resolved = true
	if err != nil {
		s.failLocked(err)
		err = s.failed
	}
	for _, r := range d.reqs {
		r.done <- err
	}
}

// startApplier starts m's applier: it applies m's queue in order; groups
// up to replayUntil are replayed (m is catching up after a copy).
func (s *Store) startApplier(m *member, replayUntil uint64) {
	m.stopped = make(chan struct{})
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(m.stopped)
		s.apply(m, replayUntil)
	}()
}

func (s *Store) apply(m *member, replayUntil uint64) {
	s.mu.Lock()
	for {
		for len(m.queue) == 0 && m.state != Disabled && !(s.closed && s.ctx.Err() != nil) {
			s.cond.Wait()
		}
		if m.state == Disabled || len(m.queue) == 0 {
			s.mu.Unlock()
			return
		}
		// Every group waiting, up to maxApply, in one transaction: a
		// database catching up gains on the groups arriving.
		batch := m.queue[:min(len(m.queue), maxApply)]
		gs := make([]*Group, len(batch))
		for i, d := range batch {
			gs[i] = d.g
		}
		db := m.db
		s.mu.Unlock()
		err := db.Apply(s.ctx, gs, replayUntil)
		s.mu.Lock()
		if m.state == Disabled {
			s.mu.Unlock()
			return
		}
		if err != nil {
			s.disableLocked(m, err)
			s.mu.Unlock()
			return
		}
		m.queue = m.queue[len(batch):]
		m.applied = gs[len(gs)-1].N
		for _, d := range batch {
			if d.counted[m.i] {
				s.reportLocked(d, true)
			}
		}
		if m.state == Syncing && len(m.queue) <= catchUp {
			m.state = Enabled
			s.logf("cjdbc: database %d (%s) enabled again at group %d", m.i, m.name, m.applied)
		}
		s.cond.Broadcast()
	}
}

// disableLocked takes m out of the set after err: the groups it had not
// applied count as failed for it, and it is reconnected and resynchronised
// later.
func (s *Store) disableLocked(m *member, err error) {
	if s.closed && s.ctx.Err() != nil {
		// Closing or crashing: not the database's fault.
		m.state = Disabled
		return
	}
	m.state, m.err = Disabled, err
	m.fails++
	s.logf("cjdbc: database %d (%s) disabled at group %d: %v", m.i, m.name, m.applied, err)
	q := m.queue
	m.queue = nil
	for _, d := range q {
		if d.counted[m.i] {
			s.reportLocked(d, false)
		}
	}
	if en := s.enabledLocked(); en < s.opts.MinDatabases {
		s.failLocked(fmt.Errorf("cjdbc: %d of %d databases enabled, below min-databases %d (database %d (%s): %v)",
			en, len(s.members), s.opts.MinDatabases, m.i, m.name, err))
	}
	if db := m.db; db != nil {
		m.db = nil
		go db.Close()
	}
	s.cond.Broadcast()
	s.startReconnect(m)
}

// startReconnect tries m again every Retry until it connects, then copies
// an enabled database to it while the new groups queue up for it, replays
// them, and enables it.
func (s *Store) startReconnect(m *member) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if m.stopped != nil {
			<-m.stopped
		}
		t := time.NewTicker(s.opts.Retry)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			if s.resync(m) {
				return
			}
		}
	}()
}

// resync makes one attempt to bring m back; it reports whether m is
// syncing (its applier runs) or the store is done.
func (s *Store) resync(m *member) bool {
	s.mu.Lock()
	if s.failed != nil || s.closed {
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	octx, cancel := context.WithTimeout(s.ctx, s.opts.OpenTimeout)
	db, err := m.open(octx)
	cancel()
	if err != nil {
		s.mu.Lock()
		if m.err == nil || m.err.Error() != err.Error() {
			s.logf("cjdbc: database %d (%s) still disabled: %v", m.i, m.name, err)
		}
		m.err = err
		s.mu.Unlock()
		return false
	}
	s.mu.Lock()
	if s.failed != nil || s.closed {
		s.mu.Unlock()
		db.Close()
		return true
	}
	src := s.mostAppliedLocked()
	if src == nil {
		s.mu.Unlock()
		db.Close()
		return false
	}
	// From the next group on, m gets every group in its queue; the copy
	// is taken once src has applied every group before it, so the copy
	// plus the replayed groups is the whole content.
	start := s.group + 1
	m.db, m.state, m.queue = db, Syncing, nil
	for src.state == Enabled && src.applied < start-1 && s.ctx.Err() == nil {
		s.cond.Wait()
	}
	if src.state != Enabled || s.ctx.Err() != nil {
		m.state, m.db = Disabled, nil
		s.mu.Unlock()
		db.Close()
		return false
	}
	srcDB := src.db
	s.logf("cjdbc: database %d (%s) reconnected: copying database %d (%s) at group %d to it", m.i, m.name, src.i, src.name, start-1)
	high := s.high
	s.mu.Unlock()
	err = db.Replace(s.ctx, start-1, high, func(fn func(*store.Message) error) error {
		return srcDB.Scan(s.ctx, fn)
	})
	s.mu.Lock()
	if err != nil {
		m.err, m.state, m.db, m.queue = err, Disabled, nil, nil
		s.logf("cjdbc: database %d (%s): copy failed: %v", m.i, m.name, err)
		s.mu.Unlock()
		db.Close()
		return false
	}
	m.resyncs++
	m.applied = start - 1
	if len(m.queue) <= catchUp {
		m.state = Enabled
		s.logf("cjdbc: database %d (%s) enabled again at group %d", m.i, m.name, m.applied)
	}
	// The copy may hold rows of every group dispatched until now.
	s.startApplier(m, s.group)
	s.cond.Broadcast()
	s.mu.Unlock()
	return true
}

// Stats implements store.Statser: per database i, db_<i>_state
// (0 disabled, 1 syncing, 2 enabled), db_<i>_lag_groups (groups
// dispatched it has not committed; for a disabled one, since it was
// disabled), db_<i>_applied_group, db_<i>_resyncs_total,
// db_<i>_failures_total; and databases_enabled, databases, group, failed.
func (s *Store) Stats() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{
		"databases":         float64(len(s.members)),
		"databases_enabled": float64(s.enabledLocked()),
		"group":             float64(s.group),
		"live_messages":     float64(s.liveN),
		"failed":            0,
	}
	if s.failed != nil {
		out["failed"] = 1
	}
	for _, m := range s.members {
		p := fmt.Sprintf("db_%d_", m.i)
		out[p+"state"] = float64(m.state)
		out[p+"lag_groups"] = float64(s.group - min(m.applied, s.group))
		out[p+"applied_group"] = float64(m.applied)
		out[p+"resyncs_total"] = float64(m.resyncs)
		out[p+"failures_total"] = float64(m.fails)
	}
	return out
}
