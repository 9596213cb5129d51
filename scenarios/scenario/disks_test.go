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
