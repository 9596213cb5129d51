package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lossbench/lossbench/broker/store"
	"github.com/lossbench/lossbench/broker/vfs"
)

// AckMode is what a replica must have done with a group before the
// master counts it (refbroker --replica-ack).
type AckMode int

// Ack modes.
const (
	// Fsynced: the replica applied the group to its own store, which made
	// it durable (fdatasync). The default.
	Fsynced AckMode = iota
	// Received: the replica has the group in memory.
	Received
)

func (a AckMode) String() string {
	if a == Received {
		return "received"
	}
	return "fsynced"
}

// ParseAckMode parses "received" or "fsynced".
func ParseAckMode(s string) (AckMode, error) {
	switch s {
	case "fsynced":
		return Fsynced, nil
	case "received":
		return Received, nil
	}
	return 0, fmt.Errorf("replica ack %q: want received or fsynced", s)
}

// Defaults of Options.
const (
	DefaultHeartbeat = 200 * time.Millisecond
	DefaultTimeout   = 2 * time.Second
	DefaultMaxLag    = 64 << 20
)

// Options configure a Node.
type Options struct {
	// ID names this node in its group (unique); the witness and the
	// other nodes know it by it.
	ID string
	// Dir is the node's data directory: its store is in Dir/journal (the
	// OpenStore callback's), the highest epoch it knows in
	// Dir/replication.epoch, and Dir/replication.resyncing exists while a
	// resync has not completed (the copy is then unusable as a master's).
	Dir string
	// Listen is where the node accepts replication connections
	// (--replication-listen).
	Listen string
	// Peers are the other nodes' replication addresses (--peer).
	Peers []string
	// Ack is what a replica must have done before the master counts it.
	Ack AckMode
	// MinReplicas is how many in-sync replicas must hold a batch before
	// the master acknowledges it (0: the master goes on alone).
	MinReplicas int
	// Heartbeat is how often an idle link carries a ping (and its ack);
	// Timeout is how long a link may stay silent before it is dropped.
	Heartbeat, Timeout time.Duration
	// MaxLag is how many bytes may wait for one replica before it is
	// dropped as too slow (it resyncs when it comes back).
	MaxLag int64
	// Transport connects the nodes (nil: TCP).
	Transport Transport
	// OpenStore opens the node's store in dir with tap as its journal's
	// Options.Tap; the store must be a store.Applier. Resync calls it
	// again after wiping dir.
	OpenStore func(dir string, tap func([]*store.Batch)) (store.Store, error)
	// Logf receives what the node does.
	Logf func(format string, args ...any)

	// joined, set by tests, is told each time the replica side has
	// applied the whole copy it rejoined with: the master's id, how
	// ("full": its snapshot, "tail": resumed from the position) and the
	// payload bytes of the copy. A master's PeerStatus shows only its
	// current link's: a link dropped after the copy and redialed resumes
	// from the copy's position.
	joined func(master, mode string, bytes int64)
}

func (o Options) withDefaults() Options {
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultMaxLag
	}
	if o.Transport == nil {
		o.Transport = TCP{}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.joined == nil {
		o.joined = func(string, string, int64) {}
	}
	return o
}

// Node is one member of a replicated master/slave group: a replica while
// it stands by (it applies what its master streams into its own store,
// with the master's seqs), then the master once its lock (Witness or
// PeerLock) makes it one. A master that meets a newer master is stale:
// its lock is lost and the process fails stop; restarted, it is a
// replica again and its unreplicated records are discarded by the resync.
type Node struct {
	o Options

	replMu sync.Mutex // held by the replica side while it serves a master

	mu          sync.Mutex
	st          store.Store
	epoch       uint64 // highest epoch known, persisted
	master      bool
	masterEpoch uint64
	complete    bool // no resync in progress
	lastContact time.Time
	masterID    string
	conn        net.Conn // the current master's connection
	received    uint64   // replica: LSN received from the current master
	applied     uint64   // replica: LSN applied (durable)
	m           *Master
	staleFns    []func(string)
	inSyncFns   []func() // told when a replica comes in sync (master)
	stale       string
	pos         *position // where the store stands, nil when unknown

	histMu    sync.Mutex
	hist      []histEntry // recent groups, oldest first
	histBytes int64

	tapM    atomic.Pointer[Master]
	ln      net.Listener
	closing chan struct{}
	wg      sync.WaitGroup
	fatal   chan struct{}
	fatalE  error
	fOnce   sync.Once
}

// New opens the node's store and starts serving replication on
// Options.Listen. A node starts as a replica.
func New(o Options) (*Node, error) {
	o = o.withDefaults()
	if o.ID == "" {
		return nil, errors.New("replication: node id is empty")
	}
	if o.OpenStore == nil {
		return nil, errors.New("replication: no store")
	}
	n := &Node{o: o, closing: make(chan struct{}), fatal: make(chan struct{})}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	b, err := os.ReadFile(n.epochPath())
	switch {
	case err == nil:
		e, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return nil, fmt.Errorf("replication: %s: %v", n.epochPath(), perr)
		}
		n.epoch = e
	case !errors.Is(err, iofs.ErrNotExist):
		return nil, fmt.Errorf("replication: %w", err)
	}
	_, err = os.Stat(n.markerPath())
	n.complete = errors.Is(err, iofs.ErrNotExist)
	if !n.complete {
		o.Logf("replication: %s holds an unfinished resync: not eligible as master until a master resyncs it", o.Dir)
	}
	st, err := o.OpenStore(n.storeDir(), n.tap)
	if err != nil {
		return nil, err
	}
	if _, ok := st.(store.Applier); !ok {
		st.Close()
		return nil, fmt.Errorf("replication: store %T cannot apply a master's records (no store.Applier)", st)
	}
	n.st = st
	if n.complete {
		n.loadPosition(st)
	}
	if o.Listen != "" {
		ln, err := o.Transport.Listen(o.Listen)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("replication: --replication-listen %s: %w", o.Listen, err)
		}
		n.ln = ln
		n.wg.Add(1)
		go n.accept()
	}
	return n, nil
}

func (n *Node) epochPath() string  { return filepath.Join(n.o.Dir, "replication.epoch") }
func (n *Node) markerPath() string { return filepath.Join(n.o.Dir, "replication.resyncing") }
func (n *Node) storeDir() string   { return filepath.Join(n.o.Dir, "journal") }

// ID is the node's id.
func (n *Node) ID() string { return n.o.ID }

// Options returns the node's options, defaults filled in.
func (n *Node) Options() Options { return n.o }

// Addr is the replication listener's address.
func (n *Node) Addr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// Fatal is closed when the node's store failed while it was a replica;
// FatalErr says why.
func (n *Node) Fatal() <-chan struct{} { return n.fatal }

// FatalErr is the failure that closed Fatal.
func (n *Node) FatalErr() error {
	<-n.fatal
	return n.fatalE
}

func (n *Node) fail(err error) {
	n.fOnce.Do(func() {
		n.fatalE = err
		n.o.Logf("replication: FATAL: %v", err)
		close(n.fatal)
	})
}

func (n *Node) tap(bs []*store.Batch) {
	if m := n.tapM.Load(); m != nil {
		m.tap(bs)
	}
}

// Epoch is the highest epoch the node knows.
func (n *Node) Epoch() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

// setEpochLocked records e as the highest epoch known, durably.
func (n *Node) setEpochLocked(e uint64) error {
	if e <= n.epoch {
		return nil
	}
	if err := writeFileSync(n.epochPath(), []byte(strconv.FormatUint(e, 10)+"\n")); err != nil {
		return fmt.Errorf("replication: record epoch %d: %w", e, err)
	}
	n.epoch = e
	return nil
}

// eligible reports whether the node's copy is whole (no resync under way).
func (n *Node) eligible() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.complete && n.stale == ""
}

// contact is when a master last spoke to this replica.
func (n *Node) contact() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastContact
}

// following returns the master streaming to this replica now, or "" (a
// master, or a replica no master reaches).
func (n *Node) following() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.master || n.conn == nil {
		return ""
	}
	return n.masterID
}

// onStale registers fn, called once if this master meets a newer one.
func (n *Node) onStale(fn func(reason string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.staleFns = append(n.staleFns, fn)
}

// onInSync registers fn, called (without locks held) each time one of the
// master's replicas comes in sync.
func (n *Node) onInSync(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inSyncFns = append(n.inSyncFns, fn)
}

func (n *Node) replicaInSync() {
	n.mu.Lock()
	fns := slices.Clone(n.inSyncFns)
	n.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (n *Node) markStale(reason string) {
	n.mu.Lock()
	if n.stale != "" {
		n.mu.Unlock()
		return
	}
	n.stale = reason
	fns := n.staleFns
	m := n.m
	n.mu.Unlock()
	n.o.Logf("replication: stale master: %s", reason)
	if m != nil {
		m.fence(reason)
	}
	for _, fn := range fns {
		fn(reason)
	}
}

// promote makes the node master with epoch: it stops serving as a
// replica (the current master's connection is closed, and the replica
// side is waited for) and refuses older masters from now on.
func (n *Node) promote(epoch uint64) error {
	n.mu.Lock()
	if !n.complete {
		n.mu.Unlock()
		return errors.New("replication: an unfinished resync: this copy cannot serve as master")
	}
	if err := n.setEpochLocked(epoch); err != nil {
		n.mu.Unlock()
		return err
	}
	n.master, n.masterEpoch = true, epoch
	if n.conn != nil {
		n.conn.Close()
	}
	n.mu.Unlock()
	n.waitReplicaSide()
	// From now on this store may hold groups no replica has: restarted,
	// it must be copied whole, never resumed.
	if err := n.dropPosition(); err != nil {
		return fmt.Errorf("replication: drop position: %w", err)
	}
	n.o.Logf("replication: %s is master with epoch %d", n.o.ID, epoch)
	return nil
}

// Open is the role machine's Options.Open once the node's lock made it
// master: the node's store, streaming to the replicas, and acknowledging
// a write once min-replicas of them hold it.
func (n *Node) Open(ctx context.Context) (store.Store, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.master {
		return nil, errors.New("replication: Open before this node became master")
	}
	if n.m != nil {
		return nil, errors.New("replication: opened twice")
	}
	if n.stale != "" {
		return nil, fmt.Errorf("replication: %s", n.stale)
	}
	m := newMaster(n, n.st, n.masterEpoch)
	m.lsn, m.base = n.applied, n.applied // LSNs go on from the store's
	n.m = m
	n.tapM.Store(m)
	m.start()
	return m, nil
}

// Close stops the node: its listener, its master's links, its store
// (unless a master opened through Open owns it and closed it).
func (n *Node) Close() error {
	select {
	case <-n.closing:
		return nil
	default:
	}
	close(n.closing)
	if n.ln != nil {
		n.ln.Close()
	}
	n.mu.Lock()
	if n.conn != nil {
		n.conn.Close()
	}
	m := n.m
	n.mu.Unlock()
	if m != nil {
		m.stopLinks()
	}
	n.wg.Wait()
	n.replMu.Lock()
	defer n.replMu.Unlock()
	if m != nil {
		return nil // the role machine's session closes the store
	}
	n.mu.Lock()
	st := n.st
	n.st = nil
	n.mu.Unlock()
	if st != nil {
		return st.Close()
	}
	return nil
}

// waitReplicaSide waits until no master's connection is being served:
// taking replMu once is the wait.
func (n *Node) waitReplicaSide() {
	n.replMu.Lock()
	//lint:ignore SA2001 taking the lock is the wait
	n.replMu.Unlock()
}

func (n *Node) accept() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer c.Close()
			n.serveConn(c)
		}()
	}
}

// state is the node as a probe's answer shows it.
func (n *Node) state() nodeState {
	n.mu.Lock()
	st := nodeState{ID: n.o.ID, Epoch: n.epoch, Eligible: n.complete && n.stale == ""}
	if n.master {
		st.Role, st.Epoch = roleMaster, n.masterEpoch
	}
	s := n.st
	n.mu.Unlock()
	if a, ok := s.(store.Applier); ok {
		st.NextSeq = a.NextSeq()
	}
	return st
}

func (n *Node) serveConn(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(n.o.Timeout))
	fr := newFrameReader(c)
	typ, p, err := fr.next()
	if err != nil {
		return
	}
	switch typ {
	case typeProbe:
		if _, err := decodeNodeState(p); err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(n.o.Timeout))
		c.Write(appendFrame(nil, typeStatus, n.state().encode()))
	case typeHello:
		h, err := decodeHello(p)
		if err != nil {
			n.o.Logf("replication: %v from %s", err, c.RemoteAddr())
			return
		}
		n.replicate(c, fr, h)
	default:
		n.o.Logf("replication: %v: frame type %d to open a connection from %s", ErrProtocol, typ, c.RemoteAddr())
	}
}

// wins reports whether a master of epoch e1 named id1 prevails over one
// of epoch e2 named id2: the higher epoch, and on a tie (two nodes that
// elected themselves without a witness) the smaller id.
func wins(e1 uint64, id1 string, e2 uint64, id2 string) bool {
	return e1 > e2 || e1 == e2 && id1 < id2
}

// writeFileSync replaces path with data durably.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return vfs.Default.SyncDir(filepath.Dir(path))
}

// readFrame reads one frame with a deadline.
func readFrame(c net.Conn, fr *frameReader, timeout time.Duration) (byte, []byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	typ, p, err := fr.next()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return typ, p, err
}
