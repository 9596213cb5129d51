package scenario_test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// readmeExample returns the "full example" of scenarios/README.md, so the
// documentation cannot drift from the parser.
func readmeExample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## A full example\\s*```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no full example")
	}
	return m[1]
}

func TestReadmeExample(t *testing.T) {
	s, err := scenario.Parse("README.md", readmeExample(t))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "replicated-site-lost"},
		{"seed", s.Seed, int64(7)},
		{"failure", s.Failure, "site-lost"},
		{"sites", len(s.Topology.Sites), 3},
		{"links", len(s.Topology.Links), 3},
		{"b1 kind", s.Topology.Nodes[1].Broker.Kind, scenario.Command},
		{"b1 argv", s.Topology.Nodes[1].Broker.Argv(map[string]string{"listen": "127.0.1.1:61613", "data": "/d"}),
			[]string{"/opt/activemq/bin/activemq", "console", "--stomp=127.0.1.1:61613", "--data=/d"}},
		{"a1 args", s.Topology.Nodes[0].Broker.Argv(map[string]string{"node": "a1"}), []string{"--lease-owner", "a1"}},
		{"disk size", s.Topology.Disks[0].Size, scenario.Size(64 << 20)},
		{"mirror", s.Topology.Disks[1].MirrorOf, "a1-d0"},
		{"db kind", s.Topology.Databases[0].Kind, scenario.Postgres},
		{"connect", s.Workload.Connect, []string{"a1", "b1"}},
		{"dest", s.Workload.Destinations, []string{"/queue/lossbench"}},
		{"size", s.Workload.Producers.Size, scenario.Size(1024)},
		{"rate", s.Workload.Producers.Rate, 200.0},
		{"max", s.Workload.Producers.MaxMessages, int64(5000)},
		{"ack", s.Workload.Consumers.Ack, scenario.AckClientIndividual},
		{"start delay", s.Workload.Consumers.StartDelay.D(), 2 * time.Second},
		{"repair all", s.Workload.Recovery.RepairAll, true},
		{"faults", len(s.Faults), 3},
		{"latency delay", s.Faults[0].Delay.D(), 50 * time.Millisecond},
		{"site-lost between", s.Faults[1].Between, []scenario.Duration{scenario.Duration(6 * time.Second), scenario.Duration(9 * time.Second)}},
		{"site-lost restart", s.Faults[1].Restart, true},
		{"kill one_of", len(s.Faults[2].OneOf), 2},
		{"chance", s.Faults[2].Chance, 0.5},
		{"expectations", len(s.Expectations), 4},
		{"unavailable", s.Expectations[2].Condition, scenario.Condition{Op: scenario.Lt, Value: 10}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	s, err := scenario.Parse("min.yaml", []byte(`
name: min
strategy: memory
failure: none
topology:
  sites: [a]
  nodes: [{name: a1, site: a, broker: {store: memory}}, {name: a2, site: a, broker: {store: memory}}]
workload:
  destination: /queue/q
  producers: {count: 1}
  consumers: {count: 1}
  duration: 5s
`))
	if err != nil {
		t.Fatal(err)
	}
	w := s.Workload
	checks := []struct {
		name      string
		got, want any
	}{
		{"seed", s.Seed, int64(scenario.DefaultSeed)},
		{"kind", s.Topology.Nodes[0].Broker.Kind, scenario.RefBroker},
		{"connect", w.Connect, []string{"a1", "a2"}},
		{"size", w.Producers.Size, scenario.DefaultSize},
		{"persistent", w.Producers.Persistent, true},
		{"rate", w.Producers.Rate, 0.0},
		{"ack", w.Consumers.Ack, scenario.AckClientIndividual},
		{"repair", w.Recovery.RepairAll, true},
		{"wait", w.Recovery.Wait, scenario.DefaultWait},
		{"drain", w.Recovery.Drain, scenario.DefaultDrain},
		{"quiet", w.Recovery.Quiet, scenario.DefaultQuiet},
		{"writeback", s.Writeback, scenario.WritebackHost},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	p, err := s.Resolve(3)
	if err != nil || len(p.Steps) != 0 || p.Seed != 3 {
		t.Errorf("plan of no faults: %+v, %v", p, err)
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want scenario.Size
		ok   bool
	}{
		{"0", 0, true}, {"512", 512, true}, {"512B", 512, true}, {"1KiB", 1024, true},
		{"64MiB", 64 << 20, true}, {"1GiB", 1 << 30, true}, {"1.5KiB", 1536, true},
		{"1KB", 1000, true}, {"10MB", 10e6, true}, {" 2 MiB ", 2 << 20, true},
		{"", 0, false}, {"KiB", 0, false}, {"12XB", 0, false}, {"-1KiB", 0, false},
		{"1e30GiB", 0, false}, {"NaNB", 0, false}, {"9999999999TiB", 0, false},
	} {
		got, err := scenario.ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	if s := scenario.Size(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %q", s)
	}
}

func TestCondition(t *testing.T) {
	for _, c := range []struct {
		cond  string
		value float64
		want  bool
	}{
		{"0", 0, true}, {"0", 1, false}, {">0", 1, true}, {">0", 0, false},
		{"<= 50", 50, true}, {"<= 50", 51, false}, {"< 10", 9.99, true}, {"< 10", 10, false},
		{">= 1000", 1000, true}, {">= 1000", 999, false}, {"!= 0", 0, false}, {"!=0", 3, true},
		{"== 2.5", 2.5, true}, {"> -1", 0, true},
	} {
		cond, err := scenario.ParseCondition(c.cond)
		if err != nil {
			t.Errorf("ParseCondition(%q): %v", c.cond, err)
			continue
		}
		if got := cond.Eval(c.value); got != c.want {
			t.Errorf("%q.Eval(%v) = %v, want %v", c.cond, c.value, got, c.want)
		}
		back, err := scenario.ParseCondition(cond.String())
		if err != nil || back != cond {
			t.Errorf("round trip of %q via %q: %v %v", c.cond, cond.String(), back, err)
		}
	}
	for _, bad := range []string{"", ">", "=< 5", "> zero", "~5", ">>1", "NaN", "> inf"} {
		if _, err := scenario.ParseCondition(bad); err == nil {
			t.Errorf("ParseCondition(%q) accepted", bad)
		}
	}
}

func TestPlanRoundTrip(t *testing.T) {
	s, err := scenario.Parse("README.md", readmeExample(t))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Resolve(11)
	path := t.TempDir() + "/" + scenario.PlanFile
	if err := p.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	q, err := scenario.ReadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	if q.Seed != 11 || q.Scenario.Name != s.Name || len(q.Steps) != len(p.Steps) {
		t.Fatalf("round trip: seed %d, name %q, %d steps", q.Seed, q.Scenario.Name, len(q.Steps))
	}
	for i := range q.Steps {
		if q.Steps[i].Name() != p.Steps[i].Name() || q.Steps[i].At != p.Steps[i].At || q.Steps[i].RestartAfter != p.Steps[i].RestartAfter {
			t.Errorf("read step %d = %+v, want %+v", i, q.Steps[i], p.Steps[i])
		}
	}
	again, _ := q.Scenario.Resolve(q.Seed)
	if len(again.Steps) != len(p.Steps) {
		t.Fatalf("re-resolving a read plan: %d steps, want %d", len(again.Steps), len(p.Steps))
	}
	for i := range again.Steps {
		if again.Steps[i].Name() != p.Steps[i].Name() || again.Steps[i].At != p.Steps[i].At {
			t.Errorf("step %d: %s@%s, want %s@%s", i, again.Steps[i].Name(), again.Steps[i].At, p.Steps[i].Name(), p.Steps[i].At)
		}
	}
}

// TestCommandBrokerDestination: a broker of kind command keeps its own
// destination rules (a topic may be what it serves); only refbroker's are
// known to the parser.
func TestCommandBrokerDestination(t *testing.T) {
	const y = `
name: topic-on-command
strategy: other
failure: none
topology:
  sites: [a]
  nodes:
    - {name: x1, site: a, broker: {kind: command, command: [somebroker, "{listen}"]}}
workload:
  destination: /topic/x
  producers: {count: 1}
  consumers: {count: 1}
  duration: 1s
`
	s, err := scenario.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Workload.Destinations; len(got) != 1 || got[0] != "/topic/x" {
		t.Fatalf("destinations %q", got)
	}
}

// TestSharedDisk: a disk with nodes is shared by them; node and nodes
// together, an unknown node or one named twice are errors with file:line.
func TestSharedDisk(t *testing.T) {
	const base = `
name: shared
strategy: shared-store
failure: none
topology:
  sites: [a]
  nodes:
    - {name: a1, site: a, broker: {kind: refbroker, store: journal, args: [--shared]}}
    - {name: a2, site: a, broker: {kind: refbroker, store: journal, args: [--shared]}}
  disks:
    - DISK
workload:
  destination: /queue/x
  producers: {count: 1}
  consumers: {count: 1}
  duration: 1s
`
	s, err := scenario.Parse("t.yaml", []byte(strings.Replace(base, "DISK", "{name: san, nodes: [a1, a2]}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	k := s.Topology.Disks[0]
	if !k.Shared() || k.Node != "a1" || strings.Join(k.Attached(), ",") != "a1,a2" {
		t.Fatalf("shared disk parsed as %+v", k)
	}
	if one := (scenario.Disk{Name: "d", Node: "a1"}); one.Shared() || strings.Join(one.Attached(), ",") != "a1" {
		t.Fatalf("a disk of one node: shared %v, attached %v", one.Shared(), one.Attached())
	}
	for disk, want := range map[string]string{
		"{name: san, node: a1, nodes: [a1, a2]}": "t.yaml:11:36: disk \"san\": node and nodes both given",
		"{name: san, nodes: [a1, b9]}":           `disk "san" nodes`,
		"{name: san, nodes: [a1, a1]}":           `"a1" named twice`,
		"{name: san, nodes: []}":                 "nodes: empty",
		"{name: san}":                            "node",
	} {
		_, err := scenario.Parse("t.yaml", []byte(strings.Replace(base, "DISK", disk, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", disk, err, want)
		}
	}
}

// TestDiskFaults: the disk fault kinds' keys and defaults, and the seed a
// plan draws where a disk-corrupt has no block or a power-cut is torn.
func TestDiskFaults(t *testing.T) {
	const y = `
name: disk-faults
strategy: journal
failure: disk-error
topology:
  sites: [a]
  nodes:
    - {name: a1, site: a, broker: {store: journal}}
  disks:
    - {name: d1, node: a1}
workload:
  destination: /queue/q
  producers: {count: 1}
  consumers: {count: 1}
  duration: 10s
faults:
  - {kind: disk-error, at: 1s, disk: d1, errno: EIO, duration: 2s}
  - {kind: disk-error, at: 2s, disk: d1, errno: ENOSPC, ops: [fsync]}
  - {kind: disk-stall, at: 3s, disk: d1, duration: 500ms}
  - {kind: disk-corrupt, at: 4s, disk: d1, file: "journal/*.log"}
  - {kind: disk-corrupt, at: 5s, disk: d1, file: "*.log", block: 3}
  - {kind: power-cut, at: 6s, node: a1, torn: true}
  - {kind: power-cut, at: 7s, node: a1}
`
	s, err := scenario.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	f := s.Faults
	if f[0].Errno != "EIO" || strings.Join(f[0].Ops, ",") != "write,fsync,read" || f[1].Errno != "ENOSPC" || strings.Join(f[1].Ops, ",") != "fsync" {
		t.Fatalf("disk-error: %+v %+v", f[0], f[1])
	}
	if f[3].File != "journal/*.log" || f[3].Block != nil || f[4].Block == nil || *f[4].Block != 3 || !f[5].Torn || f[6].Torn {
		t.Fatalf("disk-corrupt / power-cut: %+v %+v %+v", f[3], f[4], f[5])
	}
	for i, want := range []bool{true, true, true, false, false, true, false} {
		if f[i].NeedsFUSE() != want {
			t.Errorf("fault %d (%s) NeedsFUSE %v", i, f[i].Kind, !want)
		}
	}
	p1, err := s.Resolve(42)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := s.Resolve(42)
	st := p1.Steps
	if st[3].Seed == 0 || st[5].Seed == 0 || st[4].Seed != 0 || st[6].Seed != 0 || st[3].Seed != p2.Steps[3].Seed {
		t.Fatalf("seeds %d %d %d %d (again %d)", st[3].Seed, st[4].Seed, st[5].Seed, st[6].Seed, p2.Steps[3].Seed)
	}
	if at, ok := st[0].Heal(); !ok || at != 3*time.Second {
		t.Errorf("disk-error heals at %v %v, want 3s", at, ok)
	}
	if at, ok := st[2].Heal(); !ok || at != 3500*time.Millisecond {
		t.Errorf("disk-stall heals at %v %v, want 3.5s", at, ok)
	}
}

// TestReplicatedDatabase: a postgres database with replicas and a failover
// policy; its servers in order; db-lost and repair may name a replica.
func TestReplicatedDatabase(t *testing.T) {
	s, err := scenario.Parse("t.yaml", []byte(`
name: pg-cluster
strategy: jdbc-pg-sync-standby
failure: db-lost
topology:
  sites: [a, b, clients]
  links: [[clients, a], [clients, b], [a, b]]
  nodes:
    - {name: a1, site: a, broker: {kind: refbroker, store: jdbc, database: pg}}
  databases:
    - name: pg
      site: a
      kind: postgres
      replicas: [{name: pg-b, site: b, sync: true}, {name: pg-c, site: a, sync: false}]
      failover: {promote_after: 2s}
workload:
  destination: /queue/x
  producers: {count: 1}
  consumers: {count: 1}
  duration: 5s
  recovery: {repair: [pg-b]}
faults:
  - {kind: db-lost, at: 1s, database: pg-b}
`))
	if err != nil {
		t.Fatal(err)
	}
	db := s.Topology.Databases[0]
	if db.Failover == nil || db.Failover.PromoteAfter.D() != 2*time.Second {
		t.Fatalf("failover %+v", db.Failover)
	}
	want := []scenario.DBServer{{Name: "pg", Site: "a"}, {Name: "pg-b", Site: "b", Replica: true, Sync: true}, {Name: "pg-c", Site: "a", Replica: true}}
	if got := db.Servers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("servers %+v, want %+v", got, want)
	}
	if s.Faults[0].Target.Database != "pg-b" {
		t.Fatalf("db-lost target %+v", s.Faults[0].Target)
	}
}

// TestGaleraDatabase: a mariadb database with replicas is a Galera
// cluster: its nodes in order, every one synchronous, no sync key.
func TestGaleraDatabase(t *testing.T) {
	s, err := scenario.Parse("t.yaml", []byte(`
name: galera
strategy: jdbc-galera
failure: db-data-lost
topology:
  sites: [a, b, c, clients]
  links: [[clients, a], [a, b], [a, c], [b, c]]
  nodes:
    - {name: a1, site: a, broker: {kind: refbroker, store: jdbc, database: gal}}
  databases:
    - name: gal
      site: a
      kind: mariadb
      replicas: [{name: gal-b, site: b}, {name: gal-c, site: c}]
workload:
  destination: /queue/x
  producers: {count: 1}
  consumers: {count: 1}
  duration: 5s
faults:
  - {kind: db-data-lost, at: 1s, database: gal-c, restart_after: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []scenario.DBServer{{Name: "gal", Site: "a"}, {Name: "gal-b", Site: "b", Replica: true, Sync: true}, {Name: "gal-c", Site: "c", Replica: true, Sync: true}}
	if got := s.Topology.Databases[0].Servers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("servers %+v, want %+v", got, want)
	}
	if f := s.Faults[0]; f.Kind != scenario.DBDataLost || f.Target.Database != "gal-c" {
		t.Fatalf("fault %+v", f)
	}
}

// TestRemoteApplyAndMaxLag: sync: remote_apply is a sync replica that
// also waits for the apply; failover's max_lag is a size.
func TestRemoteApplyAndMaxLag(t *testing.T) {
	s, err := scenario.Parse("t.yaml", []byte(`
name: pg-apply
strategy: jdbc-pg
failure: db-lost
topology:
  sites: [a, b, clients]
  links: [[clients, a], [a, b]]
  nodes:
    - {name: a1, site: a, broker: {kind: refbroker, store: jdbc, database: pg}}
  databases:
    - name: pg
      site: a
      kind: postgres
      replicas: [{name: pg-b, site: b, sync: remote_apply}, {name: pg-c, site: b, sync: false}]
      failover: {promote_after: 2s, max_lag: 1MiB}
workload:
  destination: /queue/x
  producers: {count: 1}
  consumers: {count: 1}
  duration: 5s
`))
	if err != nil {
		t.Fatal(err)
	}
	db := s.Topology.Databases[0]
	want := []scenario.DBServer{{Name: "pg", Site: "a"}, {Name: "pg-b", Site: "b", Replica: true, Sync: true, Apply: true}, {Name: "pg-c", Site: "b", Replica: true}}
	if got := db.Servers(); !reflect.DeepEqual(got, want) {
		t.Fatalf("servers %+v, want %+v", got, want)
	}
	if !db.RemoteApply() || db.Failover.MaxLag != 1<<20 {
		t.Fatalf("remote apply %v, max_lag %d", db.RemoteApply(), db.Failover.MaxLag)
	}
}
