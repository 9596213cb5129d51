package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/journal"
	"github.com/lossbench/lossbench/broker/store"
)

// waitFor polls cond until it holds or a generous bound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openJournal(dir string, tap func([]*store.Batch)) (store.Store, error) {
	return journal.Open(dir, journal.Options{Tap: tap, SegmentSize: 64 << 10})
}

type cluster struct {
	t     *testing.T
	mem   *Mem
	dir   string
	joins map[string]*joinLog // by node id: the copies it rejoined with as a replica
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, mem: NewMem(), dir: t.TempDir(), joins: map[string]*joinLog{}}
}

// join is a copy a replica applied whole: from which master, how
// ("full" or "tail") and with how many payload bytes.
type join struct {
	master, mode string
	bytes        int64
}

// joinLog records a replica's joins, in order.
type joinLog struct {
	mu sync.Mutex
	js []join
}

func (l *joinLog) add(master, mode string, bytes int64) {
	l.mu.Lock()
	l.js = append(l.js, join{master, mode, bytes})
	l.mu.Unlock()
}

// since returns the joins from the k-th on.
func (l *joinLog) since(k int) []join {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]join(nil), l.js[k:]...)
}

func (l *joinLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.js)
}

// node starts node id listening on "id", with the other ids as peers.
func (c *cluster) node(id string, peers []string, mut func(*Options)) *Node {
	c.t.Helper()
	o := Options{ID: id, Dir: filepath.Join(c.dir, id), Listen: id, Peers: peers, MinReplicas: 1,
		Heartbeat: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Transport: c.mem.From(id), OpenStore: openJournal, Logf: c.t.Logf}
	if mut != nil {
		mut(&o)
	}
	joins := &joinLog{}
	o.joined = joins.add
	n, err := New(o)
	if err != nil {
		c.t.Fatalf("New(%s): %v", id, err)
	}
	c.joins[id] = joins
	c.t.Cleanup(func() { n.Close() })
	return n
}

// master makes n master with epoch and returns its store.
func master(t *testing.T, n *Node, epoch uint64) store.Store {
	t.Helper()
	if err := n.promote(epoch); err != nil {
		t.Fatal(err)
	}
	st, err := n.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func send(ctx context.Context, st store.Store, i int) (*store.Message, error) {
	m := &store.Message{Queue: "/queue/q", Body: []byte(fmt.Sprintf("m%d", i))}
	return m, st.Write(ctx, &store.Batch{Adds: []*store.Message{m}})
}

func mustSend(t *testing.T, st store.Store, i int) *store.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := send(ctx, st, i)
	if err != nil {
		t.Fatalf("send %d: %v", i, err)
	}
	return m
}

// contents is a store's live messages as "seq:body", in seq order.
func contents(t *testing.T, st store.Store) string {
	t.Helper()
	var out []string
	loader, _ := st.(store.Loader)
	err := st.Recover(context.Background(), func(m *store.Message) error {
		body := m.Body
		if body == nil && m.Size > 0 {
			var err error
			if body, err = loader.Load(context.Background(), m.Seq); err != nil {
				return err
			}
		}
		out = append(out, fmt.Sprintf("%d:%s", m.Seq, body))
		return nil
	})
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// caughtUp waits until replica r has applied everything master m has
// streamed.
func caughtUp(t *testing.T, m, r *Node) {
	t.Helper()
	waitFor(t, r.ID()+" applied "+m.ID()+"'s lsn", func() bool {
		ms, rs := m.Status(), r.Status()
		return rs.Master == m.ID() && rs.Complete && rs.Applied == ms.LSN
	})
}

// replicaContents is a quiet replica's store's live messages.
func replicaContents(t *testing.T, n *Node) string {
	t.Helper()
	n.mu.Lock()
	st := n.st
	n.mu.Unlock()
	return contents(t, st)
}
