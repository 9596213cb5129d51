package checker

// Metric returns the value of a named metric, the names scenario
// expectations use (scenario.Metrics); ok is false for an unknown name.
// recover_s is the longest time to recover over the faults; a fault that
// never recovered counts from its start to the end of the history.
func (r *Result) Metric(name string) (value float64, ok bool) {
	switch name {
	case "attempted":
		return float64(r.Attempted), true
	case "acknowledged":
		return float64(r.Acknowledged), true
	case "received":
		return float64(r.Received), true
	case "lost":
		return float64(r.Lost), true
	case "duplicated":
		return float64(r.Duplicated), true
	case "duplicated_ids":
		return float64(r.DuplicatedIDs), true
	case "unexpected":
		return float64(r.Unexpected), true
	case "recovered":
		return float64(r.Recovered), true
	case "unconfirmed":
		return float64(r.Unconfirmed), true
	case "drained":
		return float64(r.Drained), true
	case "dead_lettered":
		return float64(r.DeadLettered), true
	case "order_violations":
		return float64(r.OrderViolations), true
	case "unavailable_s":
		return r.UnavailableS, true
	case "dual_active_s":
		return r.DualActiveS, true
	case "throughput":
		return r.Throughput, true
	case "latency_p50_ms":
		return r.Latency.P50, true
	case "latency_p99_ms":
		return r.Latency.P99, true
	case "latency_max_ms":
		return r.Latency.Max, true
	case "e2e_p99_ms":
		return r.EndToEnd.P99, true
	case "recover_s":
		worst := 0.0
		for _, f := range r.Faults {
			v := r.EndS - f.StartS
			if f.RecoverS != nil {
				v = *f.RecoverS
			}
			worst = max(worst, v)
		}
		return worst, true
	}
	return 0, false
}
