package scenario_test

import (
	"fmt"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

func ExampleScenario_Resolve() {
	s, err := scenario.Parse("kill.yaml", []byte(`
name: kill
strategy: journal-batch
failure: broker-crash
seed: 42
topology:
  sites: [a]
  nodes:
    - {name: a1, site: a, broker: {store: journal, fsync: batch}}
    - {name: a2, site: a, broker: {store: journal, fsync: batch}}
workload:
  destination: /queue/q
  producers: {count: 2, rate: 100}
  consumers: {count: 1}
  duration: 10s
faults:
  - {kind: kill, between: [2s, 5s], target: {one_of: [a1, a2]}, restart_after: 1s}
  - {kind: pause, at: 1s, node: a2, duration: 500ms}
expectations:
  lost: 0
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, _ := s.Resolve(s.Seed)
	for _, st := range plan.Steps {
		heal, _ := st.Heal()
		fmt.Printf("%s at %s until %s\n", st.Name(), st.At, heal)
	}
	// Output:
	// pause a2 at 1s until 1.5s
	// kill a2 at 3.549s until 4.549s
}

func ExampleParse_errors() {
	_, err := scenario.Parse("bad.yaml", []byte(`
name: bad
strategy: memory
failure: broker-crash
topology:
  sites: [a]
  nodes: [{name: a1, site: b, broker: {store: memory}}]
workload:
  destination: /queue/q
  producers: {count: 1, size: 1KB, rate: -1}
  consumers: {count: 1}
  duration: 10
`))
	fmt.Println(err)
	// Output:
	// bad.yaml:7:28: node "a1" site: unknown site "b"; declared sites: a
	// bad.yaml:10:42: producers rate: must not be negative (0 is as fast as possible)
	// bad.yaml:12:13: workload duration: bad duration "10": expected a number with a unit, like 500ms, 10s or 1m30s
}

func ExampleCondition_Eval() {
	c, _ := scenario.ParseCondition("<= 50")
	fmt.Println(c, c.Eval(50), c.Eval(51))
	// Output: <= 50 true false
}
