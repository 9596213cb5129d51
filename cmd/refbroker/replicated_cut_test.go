package main

import (
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// These tests run a replicated pair of real refbrokers whose replication
// links (and the links to the witness) go through TCP proxies (toxiproxy,
// in process, dbtest.Link) that the test cuts: open connections close and
// new ones are reset, as across a partition.

// linkProxy is a proxy named name in front of the address to.
func linkProxy(t *testing.T, name, to string) *dbtest.Link {
	t.Helper()
	return dbtest.Forward(t, name, to)
}

// newCutPair is newPair with every link between the nodes, and from each
// node to the witness, through a proxy; extra are flags of both nodes.
func newCutPair(t *testing.T, witness bool, extra ...string) *pair {
	p := newPair(t, witness)
	p.extra = extra
	for i := range 2 {
		p.via[i] = linkProxy(t, nodeNames[i]+"->"+nodeNames[1-i], p.repl[1-i])
		if witness {
			p.toW[i] = linkProxy(t, nodeNames[i]+"->witness", p.witness)
		}
	}
	return p
}

// isolateA cuts node 0 from node 1 and from the witness (cut true), or
// heals the cut.
func (p *pair) isolateA(t *testing.T, cut bool) {
	t.Helper()
	ps := []*dbtest.Link{p.via[0], p.via[1]}
	if p.toW[0] != nil {
		ps = append(ps, p.toW[0])
	}
	for _, x := range ps {
		if cut {
			dbtest.Cut(t, x, "reset")
		} else {
			dbtest.Restore(t, x, "reset")
		}
	}
}

// receipts returns when l's first and last RECEIPTs came, and how many
// came in [from, to).
func (l *retryLoad) receipts(from, to time.Time) (first, last time.Time, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.acked {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return first, last, n
}

// loadedCutPair starts a newCutPair with --min-replicas min, and two
// producers on each node that write to it throughout (b's connect once
// it is master), and waits until a receipted 200.
func loadedCutPair(t *testing.T, witness bool, min string) (p *pair, a, b *leased, stop chan struct{}, la, lb *retryLoad) {
	t.Helper()
	p = newCutPair(t, witness, "--min-replicas", min)
	a, b = p.masterAndReplica(t)
	stop = make(chan struct{})
	la = startRetryLoadAs("a", a.addr, 2, stop)
	lb = startRetryLoadAs("b", b.addr, 2, stop)
	la.waitFor(t, 200, 30*time.Second)
	return p, a, b, stop, la, lb
}

// union is the bodies receipted by the loads.
func union(ls ...*retryLoad) map[string]bool {
	got := map[string]bool{}
	for _, l := range ls {
		l.mu.Lock()
		for body := range l.acked {
			got[body] = true
		}
		l.mu.Unlock()
	}
	return got
}

// stopLoads stops the loads and waits for their producers.
func stopLoads(stop chan struct{}, ls ...*retryLoad) {
	close(stop)
	for _, l := range ls {
		l.wg.Wait()
	}
}

// waitRole polls node l until its replication role is role.
func (l *leased) waitRole(t *testing.T, role string, within time.Duration) {
	t.Helper()
	if !pollUntil(within, func() bool { return l.replication(t).Role == role }) {
		t.Fatalf("%s: not %s within %v: %+v\n%s", l.name, role, within, l.replication(t), l.stderr)
	}
}

// TestReplicatedPartitionWitness: a pair with a witness, producers with
// receipts writing to both nodes throughout; node a (the master) is cut
// from b and from the witness. a cannot renew its grant: it stops
// acknowledging and exits 1; the witness grants the next epoch to b (in
// sync). With --min-replicas 0 b acknowledges alone at once, with 1 only
// once a, healed and restarted, is its replica again. Never two nodes
// acknowledging: a's last RECEIPT comes before b's first. Nothing
// receipted by either is lost. With min-replicas 0 it is the witness that
// keeps a from acknowledging alone: a waits for every replica the
// witness counts as in sync, and cannot tell the witness b is gone.
func TestReplicatedPartitionWitness(t *testing.T) {
	for _, min := range []string{"0", "1"} {
		t.Run("min-replicas-"+min, func(t *testing.T) {
			p, a, b, stop, la, lb := loadedCutPair(t, true, min)

			cutAt := time.Now()
			p.isolateA(t, true)
			if code := a.exitCode(); code != 1 {
				t.Fatalf("isolated master exit %d, want 1 (fail-stop)", code)
			}
			aExit := time.Now()
			// Either path ends its term: the lease loop seeing no renewal
			// ("lease lost"), or a write fenced because the epoch is over
			// (whichever of the two the scheduler runs first; the log
			// then says "lost the lease" just after).
			if out := a.stderr.String(); !strings.Contains(out, "lease lost") && !strings.Contains(out, "not the lock holder") {
				t.Fatalf("isolated master does not say it lost its grant:\n%s", out)
			}
			b.waitRole(t, "master", leaseTTL+20*time.Second)
			if s := b.replication(t); s.Epoch < 2 {
				t.Fatalf("new master status %+v", s)
			}
			if min == "0" {
				lb.waitFor(t, 100, 30*time.Second) // b alone, while a is cut off
			}
			healAt := time.Now()
			_, _, duringCut := lb.receipts(cutAt, healAt)
			p.isolateA(t, false)
			p.rejoin(t, b)
			n := lb.count()
			lb.waitFor(t, n+100, 30*time.Second) // b with its replica
			stopLoads(stop, la, lb)

			_, lastA, afterCut := la.receipts(cutAt, time.Now())
			firstB, _, _ := lb.receipts(time.Time{}, time.Now())
			t.Logf("min-replicas %s: a receipted %d (%d after the cut, the last at cut%+v), exited at cut%+v; b receipted %d (%d while a was cut off), the first at cut%+v",
				min, la.count(), afterCut, lastA.Sub(cutAt).Round(time.Millisecond), aExit.Sub(cutAt).Round(time.Millisecond),
				lb.count(), duringCut, firstB.Sub(cutAt).Round(time.Millisecond))
			if !lastA.Before(firstB) {
				t.Fatalf("two masters: a receipted at cut%+v, b from cut%+v", lastA.Sub(cutAt), firstB.Sub(cutAt))
			}
			if min == "0" && duringCut == 0 {
				t.Fatal("with min-replicas 0, b receipted nothing alone while a was cut off")
			}
			if min == "1" && duringCut != 0 {
				t.Fatalf("with min-replicas 1, b receipted %d without a replica", duringCut)
			}
			got := union(la, lb)
			seen := drain(t, b.addr)
			lost, extra := lostExtra(got, seen)
			t.Logf("min-replicas %s: %d receipted, %d lost, %d unreceipted recovered", min, len(got), lost, extra)
			if lost != 0 {
				t.Fatalf("%d of %d receipted messages lost", lost, len(got))
			}
		})
	}
}

// TestReplicatedPartitionNoWitness measures what the README says of a
// pair without a witness: a (the master) is cut from b for a TTL past
// b's election, with producers writing to both throughout. b hears from
// no master, reaches no better node and elects itself with the next
// epoch while a is still master: the pair splits every time. At the heal
// a meets b's newer epoch, is stale and exits 1; restarted, it resyncs as
// b's replica and discards what it wrote alone.
//
//   - --min-replicas 1: neither master acknowledges without its replica;
//     a's last RECEIPT precedes the split, b's first follows a's return
//     as its replica; nothing receipted is lost.
//   - --min-replicas 0: both acknowledge during the split (two masters),
//     and what a receipted after the cut is lost when a resyncs from b:
//     lost > 0, every lost message one of a's (all after the cut but for
//     what was in flight to b at it).
func TestReplicatedPartitionNoWitness(t *testing.T) {
	for _, min := range []string{"1", "0"} {
		t.Run("min-replicas-"+min, func(t *testing.T) {
			p, a, b, stop, la, lb := loadedCutPair(t, false, min)

			cutAt := time.Now()
			p.isolateA(t, true)
			b.waitRole(t, "master", leaseTTL+20*time.Second)
			splitAt := time.Now()
			if s := a.replication(t); s.Role != "master" {
				t.Fatalf("no split: a is %+v once b is master", s)
			}
			if min == "0" {
				n := la.count()
				la.waitFor(t, n+50, 30*time.Second) // a alone
				lb.waitFor(t, 50, 30*time.Second)   // and b alone
			} else {
				// The split lasts a TTL: the fault's length, not a wait
				// for a state (nothing may change during it).
				time.Sleep(leaseTTL)
			}
			if s := a.replication(t); s.Role != "master" {
				t.Fatalf("a stopped being master during the split: %+v", s)
			}
			healAt := time.Now()
			p.isolateA(t, false)
			if code := a.exitCode(); code != 1 {
				t.Fatalf("stale ex-master exit %d at the heal, want 1", code)
			}
			aExit := time.Now()
			if out := a.stderr.String(); !strings.Contains(out, "stale master") {
				t.Fatalf("ex-master does not say it is stale:\n%s", out)
			}
			p.rejoin(t, b)
			n := lb.count()
			lb.waitFor(t, n+100, 30*time.Second)
			stopLoads(stop, la, lb)

			_, lastA, aSplit := la.receipts(splitAt, healAt)
			firstB, _, bSplit := lb.receipts(splitAt, healAt)
			got := union(la, lb)
			seen := drain(t, b.addr)
			lost, extra := lostExtra(got, seen)
			// a's, and after the cut but for what was in flight to b at it
			// (min-replicas 0: a does not wait for b).
			lostA, lostAfterCut := 0, 0
			for body := range got {
				if seen[body] == 0 && strings.HasPrefix(body, "a") {
					lostA++
					if la.acked[body].After(cutAt) {
						lostAfterCut++
					}
				}
			}
			t.Logf("min-replicas %s: split cut%+v (b master, a still master); during the split a receipted %d, b %d; a's last receipt at cut%+v, b's first at cut%+v; a exited 1 at heal%+v; %d receipted, %d lost (%d of them a's after the cut), %d unreceipted recovered",
				min, splitAt.Sub(cutAt).Round(time.Millisecond), aSplit, bSplit, lastA.Sub(cutAt).Round(time.Millisecond),
				firstB.Sub(cutAt).Round(time.Millisecond), aExit.Sub(healAt).Round(time.Millisecond), len(got), lost, lostAfterCut, extra)
			if min == "1" {
				if !lastA.Before(splitAt) || !firstB.After(aExit) || aSplit+bSplit != 0 {
					t.Fatal("with min-replicas 1 a master acknowledged without its replica")
				}
				if lost != 0 {
					t.Fatalf("%d of %d receipted messages lost", lost, len(got))
				}
				return
			}
			if aSplit == 0 || bSplit == 0 {
				t.Fatalf("with min-replicas 0 both masters should acknowledge during the split: a %d, b %d", aSplit, bSplit)
			}
			if lost == 0 || lostA != lost || lostAfterCut == 0 {
				t.Fatalf("with min-replicas 0 want a loss made of a's receipts, after the cut: lost %d, a's %d, after the cut %d", lost, lostA, lostAfterCut)
			}
		})
	}
}

// TestReplicatedResyncUnderLoad: producers with receipts run throughout
// on the master of a pair (min-replicas 1); the replica is killed -9 and
// restarted on its data while they run. It resyncs from the master under
// load and is in sync again (/status on both sides), the master
// acknowledges with it again, then the master is killed -9: the replica
// takes over and holds every receipted message.
func TestReplicatedResyncUnderLoad(t *testing.T) {
	p := newPair(t, false)
	a, b := p.masterAndReplica(t)
	stop := make(chan struct{})
	l := startRetryLoad(a.addr, 4, stop)
	l.waitFor(t, 300, 30*time.Second)
	b.kill9()
	if !pollUntil(20*time.Second, func() bool { return a.replication(t).InSync == 0 }) {
		t.Fatalf("master still counts the killed replica in sync: %+v", a.replication(t))
	}
	downAt := time.Now()
	b2 := p.start(t, 1)
	a.waitInSync(t, 1)
	inSyncAt := time.Now()
	s := b2.replication(t)
	if s.Role != "replica" || s.Master != "broker-a" || !s.Complete {
		t.Fatalf("restarted replica status %+v", s)
	}
	n := l.count()
	l.waitFor(t, n+300, 30*time.Second) // acknowledging again, with b2
	ma := a.replication(t)
	if len(ma.Peers) != 1 || !ma.Peers[0].InSync {
		t.Fatalf("master status %+v", ma)
	}
	if !pollUntil(20*time.Second, func() bool { return b2.replication(t).Applied > 0 }) {
		t.Fatalf("replica applies nothing: %+v", b2.replication(t))
	}
	t.Logf("replica back in sync %v after it was seen down (rejoined by %s, %d bytes); %d receipted before the kill of the master",
		inSyncAt.Sub(downAt).Round(time.Millisecond), ma.Peers[0].Resync, ma.Peers[0].ResyncBytes, l.count())

	a.kill9()
	b2.waitRole(t, "master", leaseTTL+20*time.Second)
	p.rejoin(t, b2)
	stopLoads(stop, l)
	got := union(l)
	seen := drain(t, b2.addr)
	lost, extra := lostExtra(got, seen)
	t.Logf("%d receipted, %d lost, %d unreceipted recovered; resync: %s", len(got), lost, extra, resyncLine(b2.stderr.String()))
	if lost != 0 {
		t.Fatalf("%d of %d receipted messages lost", lost, len(got))
	}
}

// resyncLine is the first line of out about a resync or a catch-up.
func resyncLine(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "resynced") || strings.Contains(line, "caught up") {
			return line
		}
	}
	return "(none)"
}
