package replication

import (
	"encoding/binary"
	"fmt"

	"github.com/lossbench/lossbench/broker/store"
)

// enc appends protocol fields.
type enc []byte

func (e enc) u8(v byte) enc      { return append(e, v) }
func (e enc) u64(v uint64) enc   { return binary.LittleEndian.AppendUint64(e, v) }
func (e enc) uv(v uint64) enc    { return binary.AppendUvarint(e, v) }
func (e enc) str(s string) enc   { return append(e.uv(uint64(len(s))), s...) }
func (e enc) bytes(b []byte) enc { return append(e.uv(uint64(len(b))), b...) }

// flag appends a bool as one byte, 0 or 1.
func (e enc) flag(v bool) enc {
	if v {
		return e.u8(1)
	}
	return e.u8(0)
}

func (e enc) batch(b *store.Batch) enc {
	e = e.uv(uint64(len(b.Acks)))
	for _, seq := range b.Acks {
		e = e.uv(seq)
	}
	e = e.uv(uint64(len(b.Adds)))
	for _, m := range b.Adds {
		e = e.u64(m.Seq).str(m.Queue).uv(uint64(len(m.Headers)))
		for _, h := range m.Headers {
			e = e.str(h.Key).str(h.Value)
		}
		e = e.bytes(m.Body)
	}
	return e
}

// dec reads protocol fields; the first error sticks.
type dec struct {
	p   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: short or bad %s", ErrCorrupt, what)
	}
	d.p = nil
}

func (d *dec) u8() byte {
	if len(d.p) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.p[0]
	d.p = d.p[1:]
	return v
}

// flag reads a bool written by enc.flag: any byte but 0 or 1 is corrupt.
func (d *dec) flag(what string) bool {
	v := d.u8()
	if v > 1 {
		d.fail(what)
	}
	return v == 1
}

func (d *dec) u64() uint64 {
	if len(d.p) < 8 {
		d.fail("u64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.p)
	d.p = d.p[8:]
	return v
}

func (d *dec) uv() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

// count reads a count of items each at least min bytes long, bounded by
// what is left, so a hostile count cannot allocate without bound.
func (d *dec) count(min int) int {
	n := d.uv()
	if d.err != nil || n > uint64(len(d.p)/min) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *dec) raw() []byte {
	n := d.uv()
	if d.err != nil || n > uint64(len(d.p)) {
		d.fail("length")
		return nil
	}
	b := d.p[:n:n]
	d.p = d.p[n:]
	return b
}

func (d *dec) str() string { return string(d.raw()) }

func (d *dec) batch() *store.Batch {
	b := &store.Batch{}
	if n := d.count(1); n > 0 {
		b.Acks = make([]uint64, n)
		for i := range b.Acks {
			b.Acks[i] = d.uv()
		}
	}
	if n := d.count(11); n > 0 {
		b.Adds = make([]*store.Message, n)
		for i := range b.Adds {
			m := &store.Message{Seq: d.u64(), Queue: d.str()}
			if nh := d.count(2); nh > 0 {
				m.Headers = make([]store.Header, nh)
				for j := range m.Headers {
					m.Headers[j] = store.Header{Key: d.str(), Value: d.str()}
				}
			}
			m.Body = append([]byte{}, d.raw()...)
			m.Size = len(m.Body)
			b.Adds[i] = m
		}
	}
	return b
}

// end reports the decoder's error, or trailing bytes as one.
func (d *dec) end(what string) error {
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes after %s", ErrCorrupt, len(d.p), what)
	}
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	return nil
}

// hello opens a master's connection to a replica.
type hello struct {
	Epoch uint64
	ID    string
	LSN   uint64
}

func (h hello) encode() []byte { return enc(nil).u64(h.Epoch).str(h.ID).u64(h.LSN) }

func decodeHello(p []byte) (h hello, err error) {
	d := dec{p: p}
	h = hello{Epoch: d.u64(), ID: d.str(), LSN: d.u64()}
	return h, d.end("hello")
}

// welcome answers a hello: OK false refuses a master whose epoch is
// older than one the replica knows (Epoch). A replica that accepts and
// knows where its store stands sends its position (Pos), to be resumed
// from there instead of copied whole.
type welcome struct {
	OK    bool
	Epoch uint64
	ID    string
	Pos   *position
}

func (w welcome) encode() []byte {
	e := enc(nil).flag(w.OK).u64(w.Epoch).str(w.ID).flag(w.Pos != nil)
	if w.Pos != nil {
		e = w.Pos.append(e)
	}
	return e
}

func decodeWelcome(p []byte) (w welcome, err error) {
	d := dec{p: p}
	w = welcome{OK: d.flag("welcome flag"), Epoch: d.u64(), ID: d.str()}
	if d.flag("welcome position flag") {
		pos := d.position()
		w.Pos = &pos
	}
	return w, d.end("welcome")
}

// position is where a replica's store stands: the last LSN it applied,
// the term (epoch and id) of the master that streamed it, and the store's
// next seq then (checked when the position is read back from its file).
// A master's term has one log, so (Epoch, ID, LSN) names a prefix of it.
type position struct {
	Epoch uint64
	ID    string
	LSN   uint64
	Next  uint64
}

func (p position) append(e enc) enc { return e.u64(p.Epoch).str(p.ID).u64(p.LSN).u64(p.Next) }

func (d *dec) position() position {
	return position{Epoch: d.u64(), ID: d.str(), LSN: d.u64(), Next: d.u64()}
}

// decodePositions reads the position file's payload: the position
// before an apply, then after it.
func decodePositions(p []byte) (prev, cur position, err error) {
	d := dec{p: p}
	prev, cur = d.position(), d.position()
	return prev, cur, d.end("positions")
}

// resume answers a welcome with a position: OK, the master streams the
// groups after it up to LSN (its LSN when the replica joined), then the
// live stream; not OK, the replica resets its store and welcomes again
// without a position, for a snapshot.
type resume struct {
	OK  bool
	LSN uint64
}

func (r resume) encode() []byte { return enc(nil).flag(r.OK).u64(r.LSN) }

func decodeResume(p []byte) (r resume, err error) {
	d := dec{p: p}
	r = resume{OK: d.flag("resume flag"), LSN: d.u64()}
	return r, d.end("resume")
}

// snapshot is one chunk of the master's live messages at LSN; the last
// chunk is Final and carries the master's next seq.
type snapshot struct {
	LSN, Next uint64
	Final     bool
	Batch     *store.Batch
}

func (s snapshot) encode() []byte {
	return enc(nil).u64(s.LSN).u64(s.Next).flag(s.Final).batch(s.Batch)
}

func decodeSnapshot(p []byte) (s snapshot, err error) {
	d := dec{p: p}
	s.LSN, s.Next, s.Final = d.u64(), d.u64(), d.flag("final flag")
	s.Batch = d.batch()
	return s, d.end("snapshot")
}

// group is the batches of one of the master's group commits: batch i has
// LSN First+i.
type group struct {
	First   uint64
	Batches []*store.Batch
}

func encodeGroup(first uint64, bs []*store.Batch) []byte {
	e := enc(nil).u64(first).uv(uint64(len(bs)))
	for _, b := range bs {
		e = e.batch(b)
	}
	return e
}

func decodeGroup(p []byte) (g group, err error) {
	d := dec{p: p}
	g.First = d.u64()
	n := d.count(2)
	g.Batches = make([]*store.Batch, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		g.Batches = append(g.Batches, d.batch())
	}
	if d.err == nil && n == 0 {
		d.fail("empty group")
	}
	return g, d.end("group")
}

// position is an ack's or a ping's LSN.
func encodeLSN(lsn uint64) []byte { return enc(nil).u64(lsn) }

func decodeLSN(p []byte, what string) (uint64, error) {
	d := dec{p: p}
	v := d.u64()
	return v, d.end(what)
}

// nodeState is a probe and its answer: a node's id, role (roleStandby,
// roleMaster), the highest epoch it knows, whether it may become master
// (its copy is complete) and its next seq.
type nodeState struct {
	ID       string
	Role     byte
	Epoch    uint64
	Eligible bool
	NextSeq  uint64
}

const (
	roleStandby byte = 0
	roleMaster  byte = 1
)

func (s nodeState) encode() []byte {
	return enc(nil).str(s.ID).u8(s.Role).u64(s.Epoch).flag(s.Eligible).u64(s.NextSeq)
}

func decodeNodeState(p []byte) (s nodeState, err error) {
	d := dec{p: p}
	s.ID, s.Role, s.Epoch = d.str(), d.u8(), d.u64()
	if s.Role > roleMaster {
		d.fail("node state role")
	}
	s.Eligible, s.NextSeq = d.flag("node state eligible flag"), d.u64()
	return s, d.end("node state")
}

// witnessReq is an acquire, renew or release: the node, the epoch (for
// acquire: the highest it knows; else its grant's) and, for a renew, the
// in-sync replicas.
type witnessReq struct {
	ID     string
	Epoch  uint64
	InSync []string
}

func (r witnessReq) encode() []byte {
	e := enc(nil).str(r.ID).u64(r.Epoch).uv(uint64(len(r.InSync)))
	for _, s := range r.InSync {
		e = e.str(s)
	}
	return e
}

func decodeWitnessReq(p []byte) (r witnessReq, err error) {
	d := dec{p: p}
	r.ID, r.Epoch = d.str(), d.u64()
	if n := d.count(1); n > 0 {
		r.InSync = make([]string, n)
		for i := range r.InSync {
			r.InSync[i] = d.str()
		}
	}
	return r, d.end("witness request")
}

// grant is the witness's answer: OK with the grant's epoch, or refused
// with the holder and why; TTLms is how long the witness's grants last
// without a renewal (its --lease-ttl), so that a node can refuse a
// witness that would grant the next epoch before it stops acknowledging.
type grant struct {
	OK     bool
	Epoch  uint64
	Holder string
	Reason string
	TTLms  uint64
}

func (g grant) encode() []byte {
	return enc(nil).flag(g.OK).u64(g.Epoch).str(g.Holder).str(g.Reason).u64(g.TTLms)
}

func decodeGrant(p []byte) (g grant, err error) {
	d := dec{p: p}
	g = grant{OK: d.flag("grant flag"), Epoch: d.u64(), Holder: d.str(), Reason: d.str(), TTLms: d.u64()}
	return g, d.end("grant")
}
