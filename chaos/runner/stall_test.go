package runner

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// stallYAML: the broker (fakebroker --stall-after) ignores the consumer's
// ACKs after its 50th, as happens to a consumer whose ACKs stop reaching
// the broker: its prefetch window fills and it receives nothing more while
// its connection stays open. %s is the fault list.
const stallYAML = `
name: stall
strategy: memory
failure: %s
topology:
  sites: [a]
  nodes:
    - name: a1
      site: a
      broker: {kind: command, command: [%s, --listen, "{listen}", --stall-after, "50"]}
workload:
  destination: /queue/lossbench
  producers: {count: 2, rate: 200, size: 64B}
  consumers: {count: 1, ack: client-individual, prefetch: 20}
  duration: 2s
  recovery: {repair: all, wait: 100ms, drain: 10s, quiet: 500ms}
faults: %s
`

// TestStalledConsumerIsNotLoss: a consumer that stalls leaves the rest of
// the queue in the broker; the final drain reads it with a fresh
// connection, so nothing is reported lost and the stall is reported. The
// same stall under a kill -9 of the memory broker still reports the real
// loss.
func TestStalledConsumerIsNotLoss(t *testing.T) {
	sc := parse(t, fmt.Sprintf(stallYAML, "none", fakeBin, "[]"))
	o, _ := runScenario(t, context.Background(), sc, "")
	r := o.Result
	t.Logf("attempted %d acknowledged %d received %d lost %d drained %d notes %q", r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Drained, r.Notes)
	if r.Acknowledged < 200 || r.Lost != 0 {
		t.Fatalf("lost %d of %d acknowledged: a stalled consumer's backlog counted as loss", r.Lost, r.Acknowledged)
	}
	if r.Drained < r.Acknowledged-100 {
		t.Errorf("the final drain read %d of %d: the consumer did not stall", r.Drained, r.Acknowledged)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "final drain: read") {
		t.Errorf("the stall is not reported: %q", r.Notes)
	}

	sc = parse(t, fmt.Sprintf(stallYAML, "broker-crash", fakeBin, "\n  - {kind: kill, at: 1s, node: a1, restart_after: 300ms}"))
	o, _ = runScenario(t, context.Background(), sc, "")
	r = o.Result
	t.Logf("killed: attempted %d acknowledged %d received %d lost %d drained %d", r.Attempted, r.Acknowledged, r.Received, r.Lost, r.Drained)
	if r.Lost == 0 || r.Drained == 0 {
		t.Fatalf("lost %d, drained %d: a killed memory broker's queue must count as lost, and the backlog after the restart be drained", r.Lost, r.Drained)
	}
}
