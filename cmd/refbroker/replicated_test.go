package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lossbench/lossbench/broker/replication"
	"github.com/lossbench/lossbench/chaos/dbserver/dbtest"
)

// pair is a replicated pair's flags: each node's data, replication
// address and peer, and an optional witness.
type pair struct {
	repl    [2]string
	data    [2]string
	witness string
	// witnessAdmin is the witness's admin address (its /status).
	witnessAdmin string
	// Set by newCutPair: node i reaches the other node through via[i]
	// and the witness through toW[i], proxies the test cuts.
	via, toW [2]*dbtest.Link
	extra    []string // more flags for both nodes
}

func newPair(t *testing.T, witness bool) *pair {
	p := &pair{repl: [2]string{freeAddr(t), freeAddr(t)}, data: [2]string{t.TempDir(), t.TempDir()}}
	if witness {
		p.witness, p.witnessAdmin = freeAddr(t), freeAddr(t)
		w := launchCmd(t, exec.Command(binary(t), "witness", "--listen", p.witness, "--admin", p.witnessAdmin, "--lease-ttl", leaseTTL.String()))
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(w.stderr.String(), "witness on") {
			if time.Now().After(deadline) {
				t.Fatalf("witness did not start:\n%s", w.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return p
}

// start runs node i (0: "broker-a", 1: "broker-b").
func (p *pair) start(t *testing.T, i int) *leased {
	t.Helper()
	peer, witness := p.repl[1-i], p.witness
	if p.via[i] != nil {
		peer = p.via[i].Addr()
	}
	if p.toW[i] != nil {
		witness = p.toW[i].Addr()
	}
	ha := []string{"--store", "journal", "--data", p.data[i], "--replication-listen", p.repl[i], "--peer", peer}
	if witness != "" {
		ha = append(ha, "--witness", witness)
	}
	return startHA(t, nodeNames[i], append(ha, p.extra...))
}

var nodeNames = [2]string{"broker-a", "broker-b"}

// waitWitnessInSync polls the witness's /status until it counts node id
// as in sync with the master: only then may the witness grant the next
// epoch to it. (The master tells the witness at its next renewal after
// the replica caught up; a cut before that leaves nobody to take over.)
func (p *pair) waitWitnessInSync(t *testing.T, id string) {
	t.Helper()
	var last string
	ok := pollUntil(30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.witnessAdmin + "/status")
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Witness replication.WitnessStatus `json:"witness"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", st.Witness)
		return slices.Contains(st.Witness.InSync, id)
	})
	if !ok {
		t.Fatalf("the witness does not count %s in sync within 30s: %s", id, last)
	}
}

// rejoin restarts node 0 on its data once b (node 1) is master, and waits
// until it is b's in-sync replica, in b's epoch.
func (p *pair) rejoin(t *testing.T, b *leased) *leased {
	t.Helper()
	a2 := p.start(t, 0)
	b.waitInSync(t, 1)
	if s := a2.replication(t); s.Role != "replica" || s.Master != "broker-b" || s.Epoch != b.replication(t).Epoch {
		t.Fatalf("returning ex-master status %+v", s)
	}
	return a2
}

// masterAndReplica starts node 0, waits until it is master, then node 1,
// and waits until it is node 0's in-sync replica (not ready: a replica
// has no STOMP listener).
func (p *pair) masterAndReplica(t *testing.T) (a, b *leased) {
	t.Helper()
	a = p.start(t, 0)
	a.waitReady(t, 20*time.Second)
	b = p.start(t, 1)
	a.waitInSync(t, 1)
	if code := b.ready(); code != 503 {
		t.Fatalf("replica readyz %d, want 503", code)
	}
	if s := b.replication(t); s.Role != "replica" || s.Master != "broker-a" || !s.Complete {
		t.Fatalf("replica status %+v", s)
	}
	if p.witnessAdmin != "" {
		p.waitWitnessInSync(t, nodeNames[1])
	}
	return a, b
}

// replStatus is /status's replication.
type replStatus struct {
	Role     string `json:"role"`
	Epoch    uint64 `json:"epoch"`
	Complete bool   `json:"complete"`
	InSync   int    `json:"in_sync"`
	Master   string `json:"master"`
	Applied  uint64 `json:"applied_lsn"`
	Peers    []struct {
		InSync      bool   `json:"in_sync"`
		LagRecords  uint64 `json:"lag_records"`
		Resync      string `json:"resync"`
		ResyncBytes int64  `json:"resync_bytes"`
	} `json:"peers"`
}

func (l *leased) replication(t *testing.T) replStatus {
	t.Helper()
	resp, err := http.Get("http://" + l.admin + "/status")
	if err != nil {
		return replStatus{}
	}
	defer resp.Body.Close()
	var s struct {
		Replication replStatus `json:"replication"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Replication
}

func (l *leased) waitInSync(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.replication(t).InSync < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d replicas not in sync after 30s: %+v\n%s", l.name, n, l.replication(t), l.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicatedKillMaster: a replicated pair (min-replicas 1, fsynced
// acks), producers with receipts on the master, kill -9 of the master
// mid-load: the replica takes over with the next epoch; the ex-master,
// restarted on its data, comes back as its replica and resyncs; every
// receipted message is on the new master.
func TestReplicatedKillMaster(t *testing.T) {
	for _, witness := range []bool{false, true} {
		name := "peers"
		if witness {
			name = "witness"
		}
		t.Run(name, func(t *testing.T) {
			p := newPair(t, witness)
			a, b := p.masterAndReplica(t)
			const killAt = 300
			stop := make(chan struct{})
			var once sync.Once
			killNow := func() { a.kill9(); close(stop) }
			got := load(t, a.addr, 4, stop, func(n int) {
				if n >= killAt {
					once.Do(killNow)
				}
			})
			once.Do(killNow)
			if code := a.exitCode(); code != -int(syscall.SIGKILL) {
				t.Fatalf("master exit %d, want killed", code)
			}
			b.waitReady(t, leaseTTL+20*time.Second)
			if s := b.replication(t); s.Role != "master" || s.Epoch < 2 {
				t.Fatalf("new master status %+v", s)
			}
			// The new master acknowledges only with a replica: the
			// ex-master comes back as one, discarding what it did not
			// replicate.
			a2 := p.rejoin(t, b)
			drainStart := time.Now()
			seen := drain(t, b.addr)
			t.Logf("drained %d in %v", len(seen), time.Since(drainStart).Round(time.Millisecond))
			lost, extra := lostExtra(got, seen)
			t.Logf("%s: %d receipted before kill -9, %d lost, %d unreceipted recovered", name, len(got), lost, extra)
			if testing.Verbose() {
				t.Logf("a:\n%s\nb:\n%s\na2:\n%s", a.stderr, b.stderr, a2.stderr)
			}
			if len(got) < killAt {
				t.Fatalf("only %d receipted", len(got))
			}
			if lost != 0 {
				t.Fatalf("%d of %d receipted messages lost", lost, len(got))
			}
		})
	}
}

// TestWitnessTTLShorterThanNodes: a node whose --lease-ttl is longer than
// its witness's refuses to start (exit 2, both TTLs named): the witness
// could grant the next epoch while it still acknowledged.
func TestWitnessTTLShorterThanNodes(t *testing.T) {
	wa := freeAddr(t)
	w := launchCmd(t, exec.Command(binary(t), "witness", "--listen", wa, "--lease-ttl", "1s"))
	if !pollUntil(20*time.Second, func() bool { return strings.Contains(w.stderr.String(), "witness on") }) {
		t.Fatalf("witness did not start:\n%s", w.stderr)
	}
	n := launch(t, "--listen", freeAddr(t), "--admin=", "--store", "journal", "--data", t.TempDir(), "--lease-owner", "broker-a",
		"--lease-ttl", "2s", "--lease-renew", "500ms", "--lease-margin", "500ms", "--replication-listen", freeAddr(t), "--peer", freeAddr(t), "--witness", wa)
	if code := n.exitCode(); code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, n.stderr)
	}
	out := n.stderr.String()
	if !strings.Contains(out, "grants for 1s") || !strings.Contains(out, "--lease-ttl 2s") {
		t.Fatalf("stderr does not explain:\n%s", out)
	}
	t.Logf("%s", out)
}
