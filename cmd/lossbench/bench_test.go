package main

import (
	"strings"
	"testing"

	"github.com/lossbench/lossbench/chaos/bench"
)

func TestBenchPickTargets(t *testing.T) {
	nDefault, nPeers := len(bench.DefaultTargets()), len(bench.PeerTargets())
	cases := []struct {
		list  string
		first string
		n     int
	}{
		{"", "memory", nDefault},
		{"refbroker", "memory", nDefault},
		{"refbroker,activemq", "memory", nDefault + 3},
		{"peers", "activemq-kahadb", nPeers},
		{"journal-batch, activemq-kahadb,journal-batch,rabbitmq", "journal-batch", 3},
		{"activemq-jdbc-postgres", "activemq-jdbc-postgres", 1},
	}
	for _, c := range cases {
		got, err := pickTargets(c.list)
		if err != nil {
			t.Fatalf("%q: %v", c.list, err)
		}
		if len(got) != c.n || got[0].Name != c.first {
			t.Errorf("%q: %d targets starting %s, want %d starting %s", c.list, len(got), got[0].Name, c.n, c.first)
		}
	}
	for _, tg := range mustPick(t, "peers") {
		if tg.Peer == "" {
			t.Errorf("peer target %s has no Peer", tg.Name)
		}
	}
	if _, err := pickTargets("journal-batch,activemq-leveldb"); err == nil || !strings.Contains(err.Error(), "activemq-kahadb") {
		t.Errorf("unknown target: %v (want the known ones listed)", err)
	}
}

func mustPick(t *testing.T, list string) []bench.Target {
	t.Helper()
	tgs, err := pickTargets(list)
	if err != nil {
		t.Fatal(err)
	}
	return tgs
}

func TestBenchHelpListsPeerTargets(t *testing.T) {
	code, out, errs := runMain("bench", "--help")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, tg := range bench.PeerTargets() {
		if !strings.Contains(out+errs, "  "+tg.Name+" ") {
			t.Errorf("bench --help does not list %s:\n%s", tg.Name, out+errs)
		}
	}
	for _, s := range []string{"install-peers.sh", "groups: refbroker"} {
		if !strings.Contains(out+errs, s) {
			t.Errorf("bench --help lacks %q", s)
		}
	}
}

// TestBenchMissingPeerIsAnError checks that asking for a peer that is not
// installed fails before measuring, naming the package and the command.
// Where the peer is installed there is nothing to check.
func TestBenchMissingPeerIsAnError(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"activemq-kahadb", "apt-get install -y"},
		{"rabbitmq", "apt-get install -y rabbitmq-server"},
	} {
		var tg bench.Target
		for _, p := range bench.PeerTargets() {
			if p.Name == tc.target {
				tg = p
			}
		}
		if tg.Available() == nil {
			t.Logf("%s is installed here: nothing to check", tc.target)
			continue
		}
		code, _, errs := runMain("bench", "--targets", "journal-batch,"+tc.target, "--out", t.TempDir(), "--broker-bin", "/bin/true")
		if code != exitBad || !strings.Contains(errs, tc.want) || !strings.Contains(errs, tc.target) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d naming the target and %q", tc.target, code, errs, exitBad, tc.want)
		}
	}
}
