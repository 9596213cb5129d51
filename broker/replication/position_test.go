package replication

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/store"
)

// sendKiB writes message i with a 1 KiB body.
func sendKiB(t *testing.T, st store.Store, i int) {
	t.Helper()
	body := append([]byte(fmt.Sprintf("m%d-", i)), bytes.Repeat([]byte("x"), 1024)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Write(ctx, &store.Batch{Adds: []*store.Message{{Queue: "/queue/q", Body: body}}}); err != nil {
		t.Fatalf("send %d: %v", i, err)
	}
}

// asyncPair is a master a (epoch 1) and its in-sync replica b, both with
// min-replicas 0.
func asyncPair(t *testing.T) (c *cluster, a, b *Node, st store.Store) {
	c = newCluster(t)
	zero := func(o *Options) { o.MinReplicas = 0 }
	a = c.node("a", []string{"b"}, zero)
	b = c.node("b", []string{"a"}, zero)
	st = master(t, a, 1)
	waitFor(t, "b in sync", func() bool { return a.Status().InSync == 1 })
	return c, a, b, st
}

// sendKiBs writes messages from to from+n-1 with sendKiB.
func sendKiBs(t *testing.T, st store.Store, from, n int) {
	t.Helper()
	for i := range n {
		sendKiB(t, st, from+i)
	}
}

// outage cuts a from b until a has dropped b, writes n messages from i
// on a alone (min-replicas 0), waits until b has stopped serving the cut
// connection, runs during (if any), heals, and waits until b has caught
// up; it returns how b rejoined after the heal and with how many bytes:
// the first copy b applied whole since. Later ones do not count: under
// load a master may drop b for silence while b applies its snapshot, and
// redialed, it resumes b from the position that copy gave it.
func outage(t *testing.T, c *cluster, a, b *Node, st store.Store, i, n int, during func()) (string, int64) {
	t.Helper()
	c.mem.Cut("a", "b")
	waitFor(t, "b dropped", func() bool { return a.Status().InSync == 0 })
	sendKiBs(t, st, i, n)
	// b's side of the cut link has ended. A copy b applies from here
	// on is of a connection made after the heal: b serves one master
	// at a time, and the cut closed every earlier connection.
	b.waitReplicaSide()
	if during != nil {
		during()
	}
	joins := c.joins["b"]
	mark := joins.len()
	c.mem.Heal("a", "b")
	waitFor(t, "b back in sync", func() bool { return a.Status().InSync == 1 })
	caughtUp(t, a, b)
	if got, want := replicaContents(t, b), contents(t, st); got != want {
		t.Fatalf("after the outage the replica holds\n%s\nthe master\n%s", got, want)
	}
	js := joins.since(mark)
	if len(js) == 0 {
		t.Fatal("b caught up after the heal without a copy applied whole")
	}
	if len(js) > 1 {
		t.Logf("b rejoined %d times after the heal: %+v", len(js), js)
	}
	return js[0].mode, js[0].bytes
}

// TestResumeFromPosition: a replica away for a short outage comes back
// with its position and is sent only the groups it missed ("tail");
// the same outage without a position copies the master's whole store
// ("full"). Both leave it holding what the master holds. The bytes of
// each are logged: the ratio is what resuming saves.
func TestResumeFromPosition(t *testing.T) {
	c, a, b, st := asyncPair(t)
	sendKiBs(t, st, 0, 500)
	caughtUp(t, a, b)
	mode, tail := outage(t, c, a, b, st, 1000, 10, nil)
	if mode != "tail" {
		t.Fatalf("a replica with its position rejoined by %q, want tail", mode)
	}
	mode, full := outage(t, c, a, b, st, 2000, 10, func() {
		if err := b.dropPosition(); err != nil {
			t.Fatal(err)
		}
	})
	if mode != "full" {
		t.Fatalf("a replica without a position rejoined by %q, want full", mode)
	}
	t.Logf("outage of 10 messages (1 KiB) with 510 live: resumed with %d bytes, copied whole with %d: %.1f times fewer", tail, full, float64(full)/float64(tail))
	if tail >= full {
		t.Fatalf("resuming sent %d bytes, copying whole %d", tail, full)
	}
}

// TestResumeStalePosition: a replica whose position lags its journal (as
// when it stopped between an apply and the position's write) is offered
// groups it already applied; the first fails the journal's checks, the
// replica drops its position, and the next connection copies it whole:
// it ends holding exactly what the master holds.
func TestResumeStalePosition(t *testing.T) {
	c, a, b, st := asyncPair(t)
	sendKiBs(t, st, 0, 50)
	caughtUp(t, a, b)
	stale := *b.position()
	sendKiBs(t, st, 100, 20)
	caughtUp(t, a, b)
	mode, _ := outage(t, c, a, b, st, 200, 5, func() { b.setPosition(stale) })
	if mode != "full" {
		t.Fatalf("a replica with a stale position rejoined by %q, want full after the failed resume", mode)
	}
	if !b.Status().Complete {
		t.Fatal("replica not complete after its full resync")
	}
}

// TestResumeAcrossEpochs: three nodes; c is away while a (epoch 1) writes,
// then a is gone and b, a's replica, becomes master with epoch 2 and
// writes. c comes back with its position in a's term: b's history holds
// a's groups as it applied them, so c's log is a prefix of b's and c is
// resumed with a's groups it missed and b's own, not copied whole.
func TestResumeAcrossEpochs(t *testing.T) {
	c := newCluster(t)
	zero := func(o *Options) { o.MinReplicas = 0 }
	a := c.node("a", []string{"b", "c"}, zero)
	b := c.node("b", []string{"a", "c"}, zero)
	n3 := c.node("c", []string{"a", "b"}, zero)
	st := master(t, a, 1)
	waitFor(t, "b and c in sync", func() bool { return a.Status().InSync == 2 })
	sendKiBs(t, st, 0, 100)
	caughtUp(t, a, n3)
	c.mem.Cut("a", "c")
	c.mem.Cut("b", "c")
	waitFor(t, "c dropped", func() bool { return a.Status().InSync == 1 })
	sendKiBs(t, st, 100, 10)
	caughtUp(t, a, b)
	st.Close()
	a.Close()
	bst := master(t, b, 2)
	sendKiBs(t, bst, 200, 10)
	c.mem.Heal("b", "c")
	waitFor(t, "c in sync with b", func() bool { return b.Status().InSync == 1 })
	caughtUp(t, b, n3)
	if got, want := replicaContents(t, n3), contents(t, bst); got != want {
		t.Fatalf("c holds\n%s\nthe new master\n%s", got, want)
	}
	var p PeerStatus
	for _, q := range b.Status().Peers {
		if q.Addr == "c" {
			p = q
		}
	}
	if p.Resync != "tail" {
		t.Fatalf("c rejoined the new master by %q, want tail: %+v", p.Resync, p)
	}
	t.Logf("c resumed across the epoch change with %d bytes", p.ResyncBytes)
}

// TestResumeRefusesBadPositions: a replica that claims a position the
// master cannot prove a prefix of its log (beyond its LSN, or in a term
// it never knew) is told to reset and is copied whole; the start of the
// master's own term is resumed. The master keeps acknowledging alone
// meanwhile (min-replicas 0) and never counts the liar from its claim.
func TestResumeRefusesBadPositions(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", []string{"liar"}, func(o *Options) { o.MinReplicas = 0 })
	claims := []position{
		{Epoch: 1, ID: "a", LSN: 1000}, // beyond the master's LSN
		{Epoch: 7, ID: "x", LSN: 2},    // a term the master never knew
		{Epoch: 1, ID: "a", LSN: 0},    // the start of the master's term: honest
	}
	var mu sync.Mutex
	var answers []resume
	fakeReplicaHello(t, c, "liar", func(conn net.Conn, fr *frameReader, w *connWriter, h hello) {
		mu.Lock()
		k := len(answers)
		mu.Unlock()
		if k >= len(claims) {
			return
		}
		w.send(typeWelcome, welcome{OK: true, Epoch: h.Epoch, ID: "liar", Pos: &claims[k]}.encode())
		r, err := nextResume(conn, fr)
		if err != nil {
			t.Errorf("claim %d: %v", k, err)
			return
		}
		mu.Lock()
		answers = append(answers, r)
		mu.Unlock()
		if !r.OK {
			w.send(typeWelcome, welcome{OK: true, Epoch: h.Epoch, ID: "liar"}.encode())
			if _, err := readSnapshot(fr); err != nil {
				t.Errorf("claim %d: no snapshot after the refusal: %v", k, err)
			}
		}
	})
	st := master(t, a, 1)
	sendKiBs(t, st, 0, 5)
	waitFor(t, "every claim answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answers) == len(claims)
	})
	if a.Status().InSync != 0 {
		t.Fatal("the master counts a replica that never acknowledged")
	}
	mu.Lock()
	defer mu.Unlock()
	for k, want := range []bool{false, false, true} {
		if answers[k].OK != want {
			t.Errorf("claim %+v: resume %v, want %v", claims[k], answers[k].OK, want)
		}
	}
}

// nextResume reads frames up to the master's resume.
func nextResume(conn net.Conn, fr *frameReader) (resume, error) {
	typ, p, err := readFrame(conn, fr, 10*time.Second)
	if err != nil {
		return resume{}, err
	}
	if typ != typeResume {
		return resume{}, fmt.Errorf("frame type %d instead of resume", typ)
	}
	return decodeResume(p)
}

// TestPositionReadBack: the position file read back at start: the
// position after the last apply when the store shows it, the one before
// when the store does not (the node stopped between writing the file and
// its apply), none when neither matches the store or the file is torn.
func TestPositionReadBack(t *testing.T) {
	c, a, b, st := asyncPair(t)
	sendKiBs(t, st, 0, 20)
	caughtUp(t, a, b)
	waitFor(t, "b's position recorded", func() bool {
		p := b.position()
		return p != nil && p.LSN == a.Status().LSN
	})
	at := *b.position()
	next := b.nextSeq()
	path := b.positionPath()
	dir := b.o.Dir
	b.Close()
	c.mem.Cut("a", "b")
	reopen := func() *position {
		t.Helper()
		n := c.node("b2", nil, func(o *Options) { o.Dir, o.Listen = dir, "" })
		defer n.Close()
		return n.position()
	}
	write := func(prev, cur position) {
		t.Helper()
		b.savePositions(prev, cur)
	}
	later := position{Epoch: 1, ID: "a", LSN: at.LSN + 3}
	for _, tc := range []struct {
		name      string
		prev, cur position
		want      *position
	}{
		{"applied", position{Epoch: 1, ID: "a", LSN: at.LSN - 1, Next: next - 1}, at, &at},
		{"not applied", at, position{Epoch: 1, ID: "a", LSN: at.LSN + 3, Next: next + 5}, &at},
		{"acks only, not known", at, later, &at},
		{"neither", position{Next: next + 7}, position{Next: next + 9}, nil},
	} {
		write(tc.prev, tc.cur)
		got := reopen()
		if (got == nil) != (tc.want == nil) || got != nil && got.LSN != tc.want.LSN {
			t.Errorf("%s: position %+v, want %+v", tc.name, got, tc.want)
		}
	}
	write(position{}, at)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, 12) // torn: the CRC fails
	f.Close()
	if got := reopen(); got != nil {
		t.Errorf("torn file: position %+v, want none", got)
	}
}
