package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// rows is what one group commit writes: the added messages as parallel
// columns, the seqs to delete, and the new high-water mark (0 when the
// commit deletes nothing and so need not raise it).
type rows struct {
	seqs    []int64
	queues  [][]byte
	headers [][]byte
	bodies  [][]byte
	acks    []int64
	high    int64
	bytes   int
}

// writer is the group-commit loop: it waits for a request and a free
// connection, takes every other request waiting at that moment, prepares
// the group and commits it in a goroutine of its own, which replies to
// each request. It exits when Close has closed reqs and every commit sent
// before has returned.
func (s *Store) writer() {
	defer close(s.writerD)
	defer func() { // wait for the commits in flight
		for range s.inFlight {
			<-s.free
		}
	}()
	for {
		first, ok := <-s.reqs
		if !ok {
			return
		}
		conn := <-s.free
		group := []*request{first}
		n, size := batchRows(first.b), batchBytes(first.b)
	drain:
		for n < s.opts.BatchMax && size < maxGroupBytes {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
				n += batchRows(r.b)
				size += batchBytes(r.b)
			default:
				break drain
			}
		}
		c := s.prepare(group)
		if c == nil {
			s.free <- conn
			continue
		}
		go func() {
			s.commit(conn, c)
			s.free <- conn
		}()
	}
}

func batchRows(b *store.Batch) int { return len(b.Adds) + len(b.Acks) }

func batchBytes(b *store.Batch) int {
	n := 0
	for _, m := range b.Adds {
		n += len(m.Body)
	}
	return n
}

// pending is a prepared group: its rows and the requests to answer.
type pending struct {
	rs       rows
	accepted []*request
	live     int    // live messages once it commits
	order    uint64 // prepare order: commits in flight may finish out of it
}

// prepare validates the group's batches, answers those it refuses, assigns
// seqs and builds the rows of the accepted ones; nil when none remain.
func (s *Store) prepare(group []*request) *pending {
	if err := s.stats.failure(); err != nil {
		for _, r := range group {
			r.done <- err
		}
		return nil
	}
	var (
		p     = &pending{}
		rs    = &p.rs
		added map[uint64]int // seq -> index in rs, for an ack of a same-group add
	)
	for _, r := range group {
		// A batch acknowledging a message that is not live is refused
		// before any of it touches the shared transaction: one bad batch
		// must not fail the others in its group.
		if err := store.CheckAcks("sqlstore", r.b.Acks, s.live); err != nil {
			s.stats.reject()
			r.done <- err
			continue
		}
		p.accepted = append(p.accepted, r)
		for _, seq := range r.b.Acks {
			delete(s.live, seq)
			if i, ok := added[seq]; ok {
				rs.seqs[i] = -1 // never written: added and acked in one commit
				continue
			}
			rs.acks = append(rs.acks, int64(seq))
		}
		for _, m := range r.b.Adds {
			m.Seq = s.next
			s.next++
			m.Size = len(m.Body)
			s.live[m.Seq] = struct{}{}
			body := m.Body
			if body == nil {
				body = []byte{}
			}
			if added == nil {
				added = make(map[uint64]int)
			}
			added[m.Seq] = len(rs.seqs)
			rs.seqs = append(rs.seqs, int64(m.Seq))
			rs.queues = append(rs.queues, []byte(m.Queue))
			rs.headers = append(rs.headers, encodeHeaders(m.Headers))
			rs.bodies = append(rs.bodies, body)
			rs.bytes += len(body)
		}
	}
	if len(p.accepted) == 0 {
		return nil
	}
	// Raise the high-water mark when rows are deleted, or when seqs were
	// handed out that no row will carry.
	if dropped := rs.compact(); len(rs.acks) > 0 || dropped > 0 {
		rs.high = int64(s.next - 1)
	}
	p.live = len(s.live)
	s.prepared++
	p.order = s.prepared
	return p
}

// commit writes a prepared group in one transaction on conn and answers
// its requests: nil once COMMIT has returned, or the error that failed
// the store.
func (s *Store) commit(conn *sql.Conn, p *pending) {
	start := time.Now()
	ctx := context.Background()
	if t := commitTimeout(s.opts); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	var err error
	if s.opts.Fence != nil {
		err = s.fencedCommit(ctx, conn, &p.rs)
	} else {
		err = s.d.commit(ctx, conn, &p.rs)
	}
	took := time.Since(start)
	if err != nil {
		err = fmt.Errorf("%w: sqlstore: %s commit: %w", store.ErrFailed, s.d.name, err)
		if s.stats.fail(err) {
			s.logf("%v", err)
		}
	} else {
		s.stats.committed(len(p.accepted), &p.rs, took, p.live, p.order)
	}
	for _, r := range p.accepted {
		r.done <- err
	}
}

// compact drops adds marked -1 (acknowledged within the same commit) and
// returns how many it dropped.
func (rs *rows) compact() int {
	j := 0
	for i := range rs.seqs {
		if rs.seqs[i] < 0 {
			rs.bytes -= len(rs.bodies[i])
			continue
		}
		rs.seqs[j], rs.queues[j], rs.headers[j], rs.bodies[j] = rs.seqs[i], rs.queues[i], rs.headers[i], rs.bodies[i]
		j++
	}
	dropped := len(rs.seqs) - j
	rs.seqs, rs.queues, rs.headers, rs.bodies = rs.seqs[:j], rs.queues[:j], rs.headers[:j], rs.bodies[:j]
	return dropped
}

func (st *statsBox) reject() {
	st.mu.Lock()
	st.rejected++
	st.mu.Unlock()
}

// fail records the store's first failure and reports whether err was it.
func (st *statsBox) fail(err error) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failed == nil {
		st.failed = err
		return true
	}
	return false
}

// committed records a commit. live is the count of live messages as of
// the commit's prepare order: with two commits in flight the later one may
// finish first, and the earlier one's count must not overwrite it.
func (st *statsBox) committed(batches int, rs *rows, took time.Duration, live int, order uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.commits++
	st.batches += uint64(batches)
	st.inserted += uint64(len(rs.seqs))
	st.deleted += uint64(len(rs.acks))
	st.bytes += uint64(rs.bytes)
	st.commitTime += took
	st.commitLast = took
	st.commitMax = max(st.commitMax, took)
	st.batchesLast = batches
	st.batchesMax = max(st.batchesMax, batches)
	if order > st.liveOrder {
		st.live, st.liveOrder = live, order
	}
}
