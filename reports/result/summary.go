package result

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/lossbench/lossbench/chaos/checker"
)

// maxLostShown bounds the lost ids listed in summary.md.
const maxLostShown = 10

// Markdown is summary.md: the verdict first, then the numbers a reader
// checks next (loss, faults, latency), then where the run happened.
func (r *Result) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	verdict := r.Verdict
	if verdict == "" {
		verdict = verdictOf(r.OK, r.Acknowledged)
	}
	p("# %s: %s\n\n", r.Scenario, verdict)
	if verdict == Empty {
		p("**%s: %s.**\n\n", Empty, EmptyText)
	}
	if r.Description != "" {
		p("%s\n\n", r.Description)
	}
	p("strategy **%s**, failure **%s**, seed %d", r.Strategy, r.Failure, r.Seed)
	if r.Run != "" {
		p(", run %s", r.Run)
	}
	p("\n\n")

	if len(r.Expectations) > 0 {
		p("| expectation | value | |\n|---|---:|---|\n")
		for _, e := range r.Expectations {
			mark := "ok"
			if !e.OK {
				mark = "**FAILED**"
			}
			p("| %s %s | %s | %s |\n", e.Metric, e.Condition, num(e.Value), mark)
		}
		p("\n")
	}

	p("## Messages\n\n| attempted | acknowledged | received | lost | duplicated | unexpected | recovered | unconfirmed | order violations |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	p("| %d | %d | %d | %d | %d (%d ids) | %d | %d | %d | %d |\n\n", r.Attempted, r.Acknowledged, r.Received, r.Lost,
		r.Duplicated, r.DuplicatedIDs, r.Unexpected, r.Recovered, r.Unconfirmed, r.OrderViolations)
	if own := r.ownExits(); len(own) > 0 {
		p("Nodes that ended by themselves (not killed or stopped by the harness): %s.\n\n", strings.Join(own, "; "))
	}
	if r.Drained > 0 {
		p("%d message(s) were first read by the final drain, after the consumers stopped: they had stopped taking them (a stall) or fallen behind. Received, not lost.\n\n", r.Drained)
	}
	if r.DeadLettered > 0 {
		p("%d message(s) were never delivered from their destination but found in its dead-letter queue by the final drain: the broker gave up on them after too many redeliveries (consumers dying while holding them). Kept, not lost, not received.\n\n", r.DeadLettered)
	}
	if r.Lost > 0 {
		p("Lost by phase: before %d, during %d, after a fault %d. By producer: %s.\n\n",
			r.LostByPhase["before"], r.LostByPhase["during"], r.LostByPhase["after"], byKey(r.LostByProducer))
		n := min(len(r.LostSample), maxLostShown)
		p("First lost ids (of %d):", r.Lost)
		for _, l := range r.LostSample[:n] {
			p(" `%s` (sent %.3fs, %s)", l.ID, l.SentS, l.Phase)
		}
		p("\n\n")
	}

	p("## Performance\n\n")
	p("Throughput %.1f msg/s (acknowledged and received, per second of the send phase, %.1fs). ", r.Throughput, r.SendEndS-r.SendStartS)
	p("Unavailable %.2fs in %d windows.\n\n", r.UnavailableS, len(r.Unavailable))
	if len(r.DualActive) == 0 {
		p("Dual-active: none (never two nodes acknowledging at once).\n\n")
	} else {
		p("**Dual-active %.3fs**: two nodes acknowledged sends at once (two masters) in %d window(s):", r.DualActiveS, len(r.DualActive))
		for _, w := range r.DualActive {
			p(" %s from %.3fs to %.3fs;", strings.Join(w.Nodes, " and "), w.StartS, w.EndS)
		}
		p("\n\n")
	}
	p("| latency (ms) | n | p50 | p90 | p99 | p99.9 | p99.99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	p("| send (receipt) | %s |\n", latencyRow(r.Latency))
	p("| end to end | %s |\n", latencyRow(r.EndToEnd))
	p("\n")

	if len(r.Faults) > 0 || len(r.Planned) > 0 {
		p("## Faults\n\n| fault | start (s) | end (s) | time to recover (s) | lost sent during |\n|---|---:|---:|---:|---:|\n")
		for _, f := range r.Faults {
			end := fmt.Sprintf("%.3f", f.EndS)
			if f.Open {
				end += " (open)"
			}
			rec := "never"
			if f.RecoverS != nil {
				rec = fmt.Sprintf("%.3f", *f.RecoverS)
			}
			p("| %s | %.3f | %s | %s | %d |\n", f.Name, f.StartS, end, rec, f.LostDuring)
		}
		if len(r.Faults) == 0 {
			p("| (none recorded) | | | | |\n")
		}
		p("\nPlanned:")
		for _, s := range r.Planned {
			p(" %s at %s;", s.Name(), time.Duration(s.At))
		}
		if len(r.Planned) == 0 {
			p(" nothing")
		}
		p("\n\n")
	}
	for _, n := range r.Notes {
		p("> %s\n\n", n)
	}

	e := r.Environment
	p("## Environment\n\nlossbench %s", e.Commit)
	if e.Modified {
		p(" (modified)")
	}
	p(", %s, %s/%s, kernel %s, %d CPUs", e.GoVersion, e.OS, e.Arch, e.Kernel, e.CPUs)
	if e.Driver != "" {
		p(", driver %s", e.Driver)
	}
	if len(e.Broker) > 0 {
		p(", broker `%s`", strings.Join(e.Broker, " "))
	}
	if e.BrokerVersion != "" {
		p(" %s", e.BrokerVersion)
	}
	if e.Writeback != "" {
		p(", writeback of unsynced data %s", e.Writeback)
	}
	p(".\n")
	return b.String()
}

// WriteSummary writes Markdown to path.
func (r *Result) WriteSummary(path string) error {
	if err := os.WriteFile(path, []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	return nil
}

func latencyRow(l checker.Percentiles) string {
	if l.N == 0 {
		return "0 | - | - | - | - | -"
	}
	return fmt.Sprintf("%d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f", l.N, l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max)
}

// num prints a metric value without noise: integers as integers.
func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

// byKey formats a count map in key order: "p0 3, p1 2".
func byKey(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
