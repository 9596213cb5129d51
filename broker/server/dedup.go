package server

import "sync"

// dedupEntry tracks one dedup-id's original SEND until it is durable.
type dedupEntry struct {
	done chan struct{} // closed once the original is durable, or failed
	err  error         // set before done is closed
}

func (e *dedupEntry) resolve(err error) {
	e.err = err
	close(e.done)
}

var durableDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// dedupWindow remembers the last max dedup-ids, evicting the oldest. A
// window too small for the retry horizon lets a late retry through as a
// new message; it never drops a message that was not seen.
type dedupWindow struct {
	mu   sync.Mutex
	max  int
	m    map[string]*dedupEntry
	ring []string
	next int
}

// newDedupWindow returns a window of max ids; max < 0 disables it.
func newDedupWindow(max int) *dedupWindow {
	if max < 0 {
		return nil
	}
	return &dedupWindow{max: max, m: make(map[string]*dedupEntry)}
}

// claim returns the entry for id and whether id was already known. A new
// entry is pending until the caller resolves it.
func (w *dedupWindow) claim(id string) (*dedupEntry, bool) {
	if w == nil {
		return nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.m[id]; ok {
		return e, true
	}
	e := &dedupEntry{done: make(chan struct{})}
	w.insert(id, e)
	return e, false
}

// remember records id as durable (used while recovering).
func (w *dedupWindow) remember(id string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.m[id]; !ok {
		w.insert(id, &dedupEntry{done: durableDone})
	}
}

func (w *dedupWindow) insert(id string, e *dedupEntry) {
	if len(w.ring) < w.max {
		w.ring = append(w.ring, id)
	} else {
		delete(w.m, w.ring[w.next])
		w.ring[w.next] = id
		w.next = (w.next + 1) % w.max
	}
	w.m[id] = e
}

func (w *dedupWindow) size() int {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}
