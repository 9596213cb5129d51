package journaled

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
)

// genPrefix starts a generation directory's name. Part of the format.
const genPrefix = "gen-"

func genName(n uint64) string { return fmt.Sprintf("%s%016x", genPrefix, n) }

func parseGenName(name string) (uint64, bool) {
	hex, ok := strings.CutPrefix(name, genPrefix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	return n, err == nil && n > 0
}

// fenceError marks a checkpoint refused by Options.SQL.Fence: the store
// fails, since another broker owns the database now.
type fenceError struct{ err error }

func (e *fenceError) Error() string { return "journaled: checkpoint fenced: " + e.err.Error() }
func (e *fenceError) Unwrap() error { return e.err }

// checkpointer runs Checkpoint every Interval and when Write kicks it.
func (s *Store) checkpointer() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.opts.Interval > 0 {
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-tick:
		case <-s.kick:
		}
		if err := s.Checkpoint(context.Background()); err != nil && !errors.Is(err, store.ErrClosed) {
			s.logf("journaled: checkpoint: %v", err)
		}
	}
}

// Checkpoint rotates to a new generation if the current one holds
// anything, and applies every frozen generation to the database, oldest
// first. It returns the first failure; what was not applied stays in the
// journal for the next checkpoint (or the next Open).
func (s *Store) Checkpoint(ctx context.Context) error {
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	if f := s.failed.Load(); f != nil {
		return *f
	}
	if err := s.rotate(); err != nil {
		return err
	}
	return s.applyFrozen(ctx)
}

// rotate makes the spare generation current and freezes the old one.
// Called with cpMu held.
func (s *Store) rotate() error {
	s.rot.RLock()
	cur, closed := s.cur, s.closed
	s.rot.RUnlock()
	if closed {
		return store.ErrClosed
	}
	if cur.records.Load() == 0 {
		return nil
	}
	if s.spare == nil {
		g, err := s.openGen(cur.n + 1)
		if err != nil {
			s.stats.cpErrors.Add(1)
			return err
		}
		s.spare = g
	}
	s.rot.Lock()
	if s.closed {
		s.rot.Unlock()
		return store.ErrClosed
	}
	s.mu.Lock() // Stats reads cur under mu
	old, next := s.cur, s.spare
	s.cur, s.spare = next, nil
	s.frozen = append(s.frozen, old)
	s.gens[next.n] = next
	s.mu.Unlock()
	s.rot.Unlock()
	// Open the next spare now, off the writers' path.
	g, err := s.openGen(next.n + 1)
	if err != nil {
		s.logf("journaled: open spare generation: %v", err)
		return nil
	}
	s.spare = g
	return nil
}

// applyFrozen applies the frozen generations in order. Called with cpMu
// held.
func (s *Store) applyFrozen(ctx context.Context) error {
	for {
		s.mu.Lock()
		if len(s.frozen) == 0 {
			s.mu.Unlock()
			return nil
		}
		g, high := s.frozen[0], s.next-1
		s.mu.Unlock()
		start := time.Now()
		eff, err := readGen(ctx, g.j)
		if err == nil {
			err = s.commitGen(ctx, g.n, eff, high)
		}
		if err != nil {
			s.stats.cpErrors.Add(1)
			var fe *fenceError
			if errors.As(err, &fe) {
				return s.fail(err)
			}
			return err
		}
		s.mu.Lock()
		for _, m := range eff.adds {
			if l, ok := s.live[m.Seq]; ok && l.gen == g.n {
				s.live[m.Seq] = loc{}
				s.journalOnly--
			}
		}
		s.frozen = s.frozen[1:]
		delete(s.gens, g.n)
		s.applied = g.n
		s.mu.Unlock()
		if err := g.j.Close(); err != nil {
			s.logf("journaled: close applied generation %d: %v", g.n, err)
		}
		if err := s.removeGen(g.dir); err != nil {
			// Harmless for correctness (Open skips it), but the disk fills.
			s.logf("journaled: %v", err)
		}
		took := time.Since(start)
		s.stats.checkpoints.Add(1)
		s.stats.cpNanos.Add(uint64(took))
		s.stats.cpLast.Store(uint64(took))
		s.stats.inserted.Add(uint64(len(eff.adds)))
		s.stats.deleted.Add(uint64(len(eff.acks)))
	}
}

// effect is what applying a generation does to the database.
type effect struct {
	adds    []*store.Message // added and not acked within the generation, by seq
	acks    []uint64         // acks of messages of earlier generations
	maxSeq  uint64
	records int
}

// readGen replays a generation's journal into its effect.
func readGen(ctx context.Context, j *journal.Store) (*effect, error) {
	eff := &effect{}
	adds := make(map[uint64]*store.Message)
	var (
		cur  meta
		next int // index in cur.adds of the next message; len when expecting a meta
	)
	err := j.Recover(ctx, func(m *store.Message) error {
		if m.Body == nil && m.Size > 0 {
			body, err := j.Load(ctx, m.Seq)
			if err != nil {
				return err
			}
			m.Body = body
		}
		if next < len(cur.adds) {
			m.Seq = cur.adds[next]
			next++
			adds[m.Seq] = m
			eff.maxSeq = max(eff.maxSeq, m.Seq)
			return nil
		}
		if m.Queue != metaQueue {
			return fmt.Errorf("%w: journal message %d is not a meta record", errBadMeta, m.Seq)
		}
		var err error
		if cur, err = decodeMeta(m.Body); err != nil {
			return fmt.Errorf("journal message %d: %w", m.Seq, err)
		}
		next = 0
		eff.records++
		for _, seq := range cur.acks {
			if _, ok := adds[seq]; ok {
				delete(adds, seq)
			} else {
				eff.acks = append(eff.acks, seq)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journaled: read generation: %w", err)
	}
	if next < len(cur.adds) {
		return nil, fmt.Errorf("%w: batch cut short (%d of %d adds)", errBadMeta, next, len(cur.adds))
	}
	for _, m := range adds {
		eff.adds = append(eff.adds, m)
	}
	slices.SortFunc(eff.adds, func(a, b *store.Message) int { return cmpU64(a.Seq, b.Seq) })
	return eff, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ph returns the i-th placeholder of the dialect.
func (s *Store) ph(i int) string {
	if s.dialect == "postgres" {
		return "$" + strconv.Itoa(i)
	}
	return "?"
}

// commitGen applies generation n in one transaction (see the package doc).
func (s *Store) commitGen(ctx context.Context, n uint64, eff *effect, high uint64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journaled: checkpoint %d: begin: %w", n, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if s.opts.SQL.Fence != nil {
		if err := s.opts.SQL.Fence(ctx, tx); err != nil {
			return &fenceError{err}
		}
	}
	var done int64
	if err := tx.QueryRowContext(ctx, "SELECT gen FROM lossbench_checkpoint WHERE id = 1").Scan(&done); err != nil {
		return fmt.Errorf("journaled: checkpoint %d: read generation: %w", n, err)
	}
	if uint64(done) >= n {
		return fmt.Errorf("journaled: checkpoint %d: database already has generation %d (another broker on this database?)", n, done)
	}
	if err := s.sql.WriteTx(ctx, tx, eff.adds, eff.acks, max(high, eff.maxSeq)); err != nil {
		return fmt.Errorf("journaled: checkpoint %d: %w", n, err)
	}
	res, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE lossbench_checkpoint SET gen = %s WHERE id = 1 AND gen = %s", s.ph(1), s.ph(2)), int64(n), done)
	if err != nil {
		return fmt.Errorf("journaled: checkpoint %d: record generation: %w", n, err)
	}
	if k, err := res.RowsAffected(); err != nil || k != 1 {
		return fmt.Errorf("journaled: checkpoint %d: generation changed under us (%d rows, %v)", n, k, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journaled: checkpoint %d: commit: %w", n, err)
	}
	return nil
}

// checkpointSchema creates lossbench_checkpoint, the applied generation,
// owned by this package. Idempotent.
var checkpointSchema = map[string][]string{
	"postgres": {
		"CREATE TABLE IF NOT EXISTS lossbench_checkpoint (id INTEGER PRIMARY KEY, gen BIGINT NOT NULL)",
		"INSERT INTO lossbench_checkpoint (id, gen) VALUES (1, 0) ON CONFLICT DO NOTHING",
	},
	"mysql": {
		"CREATE TABLE IF NOT EXISTS lossbench_checkpoint (id INTEGER PRIMARY KEY, gen BIGINT NOT NULL) ENGINE=InnoDB",
		"INSERT IGNORE INTO lossbench_checkpoint (id, gen) VALUES (1, 0)",
	},
	"sqlite": {
		"CREATE TABLE IF NOT EXISTS lossbench_checkpoint (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL)",
		"INSERT INTO lossbench_checkpoint (id, gen) VALUES (1, 0) ON CONFLICT DO NOTHING",
	},
}

// recover applies the generations on disk that the database does not
// have, removes the others, and loads the live seqs and the next seq.
func (s *Store) recover(ctx context.Context) error {
	for _, stmt := range checkpointSchema[s.dialect] {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("journaled: create checkpoint table: %w", err)
		}
	}
	var applied, high int64
	if err := s.db.QueryRowContext(ctx, "SELECT gen FROM lossbench_checkpoint WHERE id = 1").Scan(&applied); err != nil {
		return fmt.Errorf("journaled: read checkpoint: %w", err)
	}
	s.applied = uint64(applied)
	names, err := s.fs.List(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("journaled: list %s: %w", s.opts.Dir, err)
	}
	var ns []uint64
	for _, name := range names {
		if n, ok := parseGenName(name); ok {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	for _, n := range ns {
		dir := filepath.Join(s.opts.Dir, genName(n))
		if n <= s.applied {
			s.logf("journaled: generation %d already in the database, removing %s", n, dir)
			if err := s.removeGen(dir); err != nil {
				return err
			}
			continue
		}
		if err := s.recoverGen(ctx, n, dir); err != nil {
			return err
		}
	}
	if err := s.db.QueryRowContext(ctx, "SELECT high FROM lossbench_seq WHERE id = 1").Scan(&high); err != nil {
		return fmt.Errorf("journaled: read high-water: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT seq FROM lossbench_msgs ORDER BY seq")
	if err != nil {
		return fmt.Errorf("journaled: read seqs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return fmt.Errorf("journaled: read seqs: %w", err)
		}
		s.live[uint64(seq)] = loc{}
		high = max(high, seq)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("journaled: read seqs: %w", err)
	}
	s.next = uint64(high) + 1
	return nil
}

// recoverGen applies generation n found on disk at Open.
func (s *Store) recoverGen(ctx context.Context, n uint64, dir string) error {
	j, err := journal.Open(dir, s.opts.Journal)
	if err != nil {
		return fmt.Errorf("journaled: open generation %d: %w", n, err)
	}
	eff, err := readGen(ctx, j)
	if err == nil && eff.records > 0 {
		err = s.commitGen(ctx, n, eff, eff.maxSeq)
	}
	if cerr := j.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journaled: close generation %d: %w", n, cerr)
	}
	if err != nil {
		return err
	}
	if eff.records > 0 {
		s.applied = n
		s.logf("journaled: applied generation %d from the journal: %d batches, %d messages, %d acks", n, eff.records, len(eff.adds), len(eff.acks))
	}
	return s.removeGen(dir)
}

// openGen creates generation n's directory and opens its journal.
func (s *Store) openGen(n uint64) (*gen, error) {
	dir := filepath.Join(s.opts.Dir, genName(n))
	j, err := journal.Open(dir, s.opts.Journal)
	if err != nil {
		return nil, fmt.Errorf("journaled: open generation %d: %w", n, err)
	}
	return &gen{n: n, dir: dir, j: j}, nil
}

// removeGen deletes a closed generation's directory.
func (s *Store) removeGen(dir string) error {
	names, err := s.fs.List(dir)
	if err != nil {
		return fmt.Errorf("journaled: list %s: %w", dir, err)
	}
	for _, name := range names {
		if err := s.fs.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("journaled: remove generation: %w", err)
		}
	}
	if err := s.fs.Remove(dir); err != nil {
		return fmt.Errorf("journaled: remove generation: %w", err)
	}
	if err := s.fs.SyncDir(s.opts.Dir); err != nil {
		return fmt.Errorf("journaled: sync %s: %w", s.opts.Dir, err)
	}
	return nil
}
