package server

import (
	"hash/crc32"
	"sync"
)

// dedupKey scopes a dedup-id to its destination: the same id sent to two
// queues names two messages.
type dedupKey struct{ dest, id string }

// dedupEntry tracks one dedup-id's original SEND until it is durable, and
// what that original was, so that a retry is answered only when it is the
// same message.
type dedupEntry struct {
	done chan struct{} // closed once the original is durable, or failed
	err  error         // set before done is closed

	persistent bool
	size       int
	sum        uint32 // CRC-32C of the body, valid when summed
	summed     bool
	seq        uint64 // recovered without its body: load it to sum it
}

func (e *dedupEntry) resolve(err error) {
	e.err = err
	close(e.done)
}

var durableDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func bodySum(body []byte) uint32 { return crc32.Checksum(body, castagnoli) }

// sameAs reports whether a retry (persistent, body of size with sum) may be
// answered by the original e: the same body, and not more durable than it.
func (e *dedupEntry) sameAs(persistent bool, size int, sum uint32) bool {
	return e.size == size && e.sum == sum && (e.persistent || !persistent)
}

// dedupWindow remembers the last max dedup-ids per destination, evicting
// the oldest. A window too small for the retry horizon lets a late retry
// through as a new message; it never drops a message that was not seen.
type dedupWindow struct {
	mu   sync.Mutex
	max  int
	m    map[dedupKey]*dedupEntry
	ring []dedupKey
	next int
}

// newDedupWindow returns a window of max ids; max < 0 disables it.
func newDedupWindow(max int) *dedupWindow {
	if max < 0 {
		return nil
	}
	return &dedupWindow{max: max, m: make(map[dedupKey]*dedupEntry)}
}

// claim gives each send that carries a dedup-id its entry: a new one,
// pending until the caller resolves it, or, when the id is known in that
// destination, its original's (dup). It claims all or nothing: when a
// send names an original that is not the same message (another body, or
// persistent where the original was not), it claims nothing and returns
// that send's index; otherwise -1. load reads back the body of a message
// recovered without it (a rare path: a retry across a restart of a
// paged-out message), under the window's lock.
func (w *dedupWindow) claim(sends []pendingSend, load func(seq uint64) ([]byte, error)) (int, error) {
	if w == nil {
		return -1, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var batch map[dedupKey]*pendingSend // earlier sends of this batch
	for i := range sends {
		p := &sends[i]
		m := p.msg
		if m.dedupID == "" {
			continue
		}
		k := dedupKey{m.dest, m.dedupID}
		if e := w.m[k]; e != nil {
			if !e.summed {
				body, err := load(e.seq)
				if err != nil {
					return -1, err
				}
				e.sum, e.summed = bodySum(body), true
			}
			if !e.sameAs(m.persistent, m.size, p.sum) {
				return i, nil
			}
		} else if o := batch[k]; o != nil {
			if !(&dedupEntry{persistent: o.msg.persistent, size: o.msg.size, sum: o.sum}).sameAs(m.persistent, m.size, p.sum) {
				return i, nil
			}
		} else {
			if batch == nil {
				batch = make(map[dedupKey]*pendingSend)
			}
			batch[k] = p
		}
	}
	for i := range sends {
		p := &sends[i]
		m := p.msg
		if m.dedupID == "" {
			continue
		}
		k := dedupKey{m.dest, m.dedupID}
		if e := w.m[k]; e != nil {
			p.entry, p.dup = e, true
			continue
		}
		p.entry = &dedupEntry{done: make(chan struct{}), persistent: m.persistent, size: m.size, sum: p.sum, summed: true}
		w.insert(k, p.entry)
	}
	return -1, nil
}

// remember records a recovered, durable message (used while recovering);
// body nil with size > 0 means it was recovered without its body.
func (w *dedupWindow) remember(dest, id string, seq uint64, body []byte, size int) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := dedupKey{dest, id}
	if _, ok := w.m[k]; !ok {
		e := &dedupEntry{done: durableDone, persistent: true, size: size, seq: seq}
		if body != nil || size == 0 {
			e.sum, e.summed = bodySum(body), true
		}
		w.insert(k, e)
	}
}

func (w *dedupWindow) insert(k dedupKey, e *dedupEntry) {
	if len(w.ring) < w.max {
		w.ring = append(w.ring, k)
	} else {
		delete(w.m, w.ring[w.next])
		w.ring[w.next] = k
		w.next = (w.next + 1) % w.max
	}
	w.m[k] = e
}

func (w *dedupWindow) size() int {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}
