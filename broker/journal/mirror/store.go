package mirror

import (
	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
)

// Store is the journal on a mirrored set of directories.
type Store struct {
	*journal.Store
	set *Set
}

var _ store.MirrorReporter = (*Store)(nil)

// OpenJournal opens the set and the journal on it (jopts.FS and
// LockTimeout are the set's), then starts rebuilding stale copies.
func OpenJournal(dirs []Dir, opts Options, jopts journal.Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = jopts.LockTimeout
	}
	set, err := Open(dirs, opts)
	if err != nil {
		return nil, err
	}
	jopts.FS = set.FS()
	j, err := journal.Open(set.Root(), jopts)
	if err != nil {
		set.Close()
		return nil, err
	}
	set.Start()
	return &Store{Store: j, set: set}, nil
}

// Set returns the set of copies.
func (s *Store) Set() *Set { return s.set }

// Mirrors implements store.MirrorReporter.
func (s *Store) Mirrors() []store.MirrorStatus { return s.set.Status() }

// Stats adds journal_mirrors_healthy and journal_mirrors_total to the
// journal's statistics.
func (s *Store) Stats() map[string]float64 {
	st := s.Store.Stats()
	h, t := s.set.Count()
	st["journal_mirrors_healthy"] = float64(h)
	st["journal_mirrors_total"] = float64(t)
	return st
}

// Close closes the journal, then stops any rebuild (the copy stays
// stale, rebuilt at the next start) and releases the lock.
func (s *Store) Close() error {
	err := s.Store.Close()
	s.set.Close()
	return err
}
