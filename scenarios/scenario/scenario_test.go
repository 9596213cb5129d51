package scenario_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

func TestSuiteLoads(t *testing.T) {
	files, err := filepath.Glob("../suite/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("suite: %v files, err %v", len(files), err)
	}
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if s.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: name %q does not match the file name", f, s.Name)
		}
		if len(s.Expectations) == 0 {
			t.Errorf("%s: no expectations", f)
		}
	}
}

const randomFaults = `
name: random
strategy: journal-batch
failure: broker-crash
topology:
  sites: [a, b, clients]
  links: [[clients, a], [clients, b], [a, b]]
  nodes:
    - {name: a1, site: a, broker: {store: journal}}
    - {name: a2, site: a, broker: {store: journal}}
    - {name: b1, site: b, broker: {store: journal}}
workload:
  destination: /queue/q
  producers: {count: 1}
  consumers: {count: 1}
  duration: 60s
faults:
  - {kind: kill, between: [10s, 50s], target: {one_of: [a1, a2, b1]}, restart_after: 1s}
  - {kind: partition, between: [1s, 59s], target: {one_of: [[a, b], a1, [clients, b]]}, duration: 2s}
  - {kind: latency, between: [0s, 30s], link: [clients, a], delay: 100ms, chance: 0.5}
  - {kind: pause, at: 5s, node: b1, duration: 1s}
`

func TestResolveSameSeedSamePlan(t *testing.T) {
	s, err := scenario.Parse("random.yaml", []byte(randomFaults))
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for seed := int64(0); seed < 50; seed++ {
		p1, err := s.Resolve(seed)
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := s.Resolve(seed)
		if !reflect.DeepEqual(p1, p2) {
			t.Fatalf("seed %d: two resolves differ:\n%+v\n%+v", seed, p1.Steps, p2.Steps)
		}
		// A fresh parse of the same text gives the same plan too.
		s2, _ := scenario.Parse("random.yaml", []byte(randomFaults))
		p3, _ := s2.Resolve(seed)
		if !reflect.DeepEqual(p1.Steps, p3.Steps) {
			t.Fatalf("seed %d: reparse changes the plan", seed)
		}
		for i := 1; i < len(p1.Steps); i++ {
			if p1.Steps[i].At < p1.Steps[i-1].At {
				t.Fatalf("seed %d: steps not sorted: %+v", seed, p1.Steps)
			}
		}
		for _, st := range p1.Steps {
			at := time.Duration(st.At)
			switch st.Index {
			case 0:
				if at < 10*time.Second || at > 50*time.Second || at%time.Millisecond != 0 {
					t.Fatalf("seed %d: kill at %v outside [10s, 50s] or not whole ms", seed, at)
				}
			case 3:
				if at != 5*time.Second {
					t.Fatalf("seed %d: fixed pause moved to %v", seed, at)
				}
			}
		}
		key := ""
		for _, st := range p1.Steps {
			key += st.Name() + "@" + st.At.String() + ";"
		}
		distinct[key] = true
	}
	if len(distinct) < 40 {
		t.Errorf("50 seeds gave only %d distinct plans; the seed is not used", len(distinct))
	}
}
