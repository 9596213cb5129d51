package scenario_test

import (
	"strings"
	"testing"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// disksBase is a scenario with a spare node; TOP, NODES, DISKS, FAULTS
// and EXPECT are replaced by each case.
const disksBase = `
name: disks
strategy: journal
failure: machine-lost
TOP
topology:
  sites: [a]
  nodes:
    - {name: a1, site: a, broker: {store: journal}}
    - {name: a2, site: a, broker: {store: journal, args: [--shared]}}
    - {name: a3, site: a, broker: {store: journal, args: [--shared]}}
NODES
  disks:
    - {name: d1, node: a1}
    - {name: san, nodes: [a2, a3]}
DISKS
workload:
  destination: /queue/q
  producers: {count: 1}
  consumers: {count: 1}
  duration: 10s
faults:
  - {kind: kill, at: 1s, node: a1}
FAULTS
expectations:
  lost: 0
EXPECT
`

func disksScenario(repl map[string]string) string {
	y := disksBase
	for _, k := range []string{"TOP", "NODES", "DISKS", "FAULTS", "EXPECT"} {
		y = strings.Replace(y, k, repl[k], 1)
	}
	return y
}

func TestWriteback(t *testing.T) {
	s, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"TOP": "writeback: none"})))
	if err != nil {
		t.Fatal(err)
	}
	if s.Writeback != scenario.WritebackNone {
		t.Fatalf("writeback %q", s.Writeback)
	}
	for top, want := range map[string]string{
		"writeback: 30s":    `t.yaml:5:12: writeback: unknown "30s"; expected one of: host, none`,
		"writeback: [none]": "t.yaml:5:12: writeback: expected a string",
	} {
		_, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"TOP": top})))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", top, err, want)
		}
	}
}

func TestExitExpectations(t *testing.T) {
	s, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"EXPECT": "  exit: {a1: 1, a2: none, a3: 0}"})))
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, e := range s.Exits {
		got += e.Node + "=" + e.String() + " "
	}
	if got != "a1=1 a2=none a3=0 " || len(s.Expectations) != 1 {
		t.Fatalf("exits %q, expectations %+v", got, s.Expectations)
	}
	for exp, want := range map[string]string{
		"  exit: {a9: 1}":        `t.yaml:27:10: expectations exit: unknown node "a9"; declared nodes: a1, a2, a3`,
		"  exit: {a1: 256}":      `t.yaml:27:14: expectations exit a1: expected an exit status (0 to 255) or none, got "256"`,
		"  exit: {a1: never}":    `expected an exit status (0 to 255) or none, got "never"`,
		"  exit: 1":              "t.yaml:27:9: expectations exit: expected a mapping of node: exit status",
		"  exit: {a1: 1, a1: 2}": `node "a1" twice`,
		"  exit: {d1: 1}":        `"d1" is a disk`,
		"  exit: {a1: [1]}":      "expectations exit a1: expected an exit status (0 to 255) or none",
	} {
		_, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"EXPECT": exp})))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", exp, err, want)
		}
	}
}

func TestMoveDisksTo(t *testing.T) {
	spare := "    - {name: s1, site: a, spare: true, broker: {store: journal}}"
	move := "  - {kind: machine-lost, at: 2s, node: a1, move_disks_to: s1, restart_after: 1s}"
	s, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"NODES": spare, "FAULTS": move})))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Topology.Nodes[3].Spare || s.Topology.Nodes[0].Spare || s.Faults[1].MoveDisksTo != "s1" {
		t.Fatalf("spare %+v, fault %+v", s.Topology.Nodes[3], s.Faults[1])
	}
	p, err := s.Resolve(1)
	if err != nil || p.Steps[1].MoveDisksTo != "s1" {
		t.Fatalf("plan %+v, %v", p, err)
	}
	for _, tc := range []struct{ nodes, disks, faults, want string }{
		{spare, "", "", `node "s1": a spare that no machine-lost moves disks to (move_disks_to) is never started`},
		{"", "", "  - {kind: machine-lost, at: 2s, node: a1, move_disks_to: a2}", `move_disks_to: node "a2" is not a spare`},
		{"", "", "  - {kind: machine-lost, at: 2s, node: a1, move_disks_to: x9}", `unknown node "x9"`},
		{spare, "", "  - {kind: machine-lost, at: 2s, node: a2, move_disks_to: s1}", `node "a2" has no disk of its own to move`},
		{spare, "    - {name: d9, node: s1}", move, `disk "d9": node "s1" is a spare`},
		{spare, "", move + "\n" + strings.Replace(move, "2s", "3s", 1), `spare "s1" already takes the disks of the machine-lost at line 24`},
		{spare, "", "  - {kind: machine-lost, at: 2s, node: s1, move_disks_to: s1}", `"s1" is the lost node itself`},
		{spare, "", "  - {kind: kill, at: 2s, node: a1, move_disks_to: s1}", `fault kill: key "move_disks_to" does not apply`},
		{"    - {name: s1, site: a, spare: yes please, broker: {store: journal}}", "", move, "spare: expected"},
	} {
		_, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"NODES": tc.nodes, "DISKS": tc.disks, "FAULTS": tc.faults})))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s / %s / %s: error %v, want it to say %q", tc.nodes, tc.disks, tc.faults, err, tc.want)
		}
	}
}

func TestDiskFaultNode(t *testing.T) {
	s, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"FAULTS": "  - {kind: disk-stall, at: 2s, disk: san, node: a3, duration: 1s}"})))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Resolve(1); s.Faults[1].Node != "a3" || p.Steps[1].Node != "a3" {
		t.Fatalf("fault %+v", s.Faults[1])
	}
	for _, tc := range []struct{ faults, want string }{
		{"  - {kind: disk-stall, at: 2s, disk: d1, node: a1, duration: 1s}", `fault disk-stall node: disk "d1" is not shared`},
		{"  - {kind: disk-error, at: 2s, disk: san, node: a1, errno: EIO}", `fault disk-error node: node "a1" does not reach disk "san" (nodes: a2, a3)`},
		{"  - {kind: disk-error, at: 2s, disk: san, node: x9, errno: EIO}", `unknown node "x9"`},
		{"  - {kind: disk-lost, at: 2s, disk: san, node: a2}", `fault disk-lost: key "node" does not apply`},
	} {
		_, err := scenario.Parse("t.yaml", []byte(disksScenario(map[string]string{"FAULTS": tc.faults})))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.faults, err, tc.want)
		}
	}
}

func TestRestartArgs(t *testing.T) {
	y := strings.Replace(disksScenario(nil), "  duration: 10s\n", "  duration: 10s\n  recovery: {restart_args: RA}\n", 1)
	s, err := scenario.Parse("t.yaml", []byte(strings.Replace(y, "RA", "{a1: [--repair], a2: []}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ra := s.Workload.Recovery.RestartArgs; strings.Join(ra["a1"], " ") != "--repair" || ra["a2"] == nil || len(ra) != 2 {
		t.Fatalf("restart_args %q", ra)
	}
	for ra, want := range map[string]string{
		"{x9: [--repair]}":            `recovery restart_args: unknown node "x9"`,
		"[--repair]":                  "recovery restart_args: expected a mapping of node: [arguments]",
		"{a1: --repair}":              "recovery restart_args a1: expected",
		"{a1: [--repair], a1: [--x]}": `node "a1" twice`,
	} {
		_, err := scenario.Parse("t.yaml", []byte(strings.Replace(y, "RA", ra, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to say %q", ra, err, want)
		}
	}
}
