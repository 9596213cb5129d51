package report

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/lossbench/lossbench/chaos/checker"
)

// measured are the scenarios that were not skipped.
func measured(scs []*Scenario) []*Scenario {
	var out []*Scenario
	for _, s := range scs {
		if s.Skipped == "" {
			out = append(out, s)
		}
	}
	return out
}

// plotScenarioThroughput draws, per strategy, the throughput of its
// scenario runs (acknowledged and received per second of the send phase,
// faults included): the median bar, whiskers min–max over runs.
func plotScenarioThroughput(dir string, m *Matrix, scs []*Scenario) (*Figure, error) {
	scs = measured(scs)
	if len(scs) == 0 {
		return nil, nil
	}
	p := newPlot("Throughput per strategy under its failure scenarios (median, whiskers min–max over runs)", meta(scs))
	var names []string
	b := bars{width: 0.6, fill: seriesColour(0)}
	for _, st := range m.Strategies {
		var vals []float64
		for _, s := range scs {
			if orUnnamed(s.Result.Strategy) == st {
				vals = append(vals, s.Result.Throughput)
			}
		}
		if len(vals) == 0 {
			continue
		}
		sum := checker.Summarize(vals)
		b.bars = append(b.bars, bar{x: float64(len(names)), y: sum.Median, lo: sum.Min, hi: sum.Max, spread: len(vals) > 1})
		names = append(names, fmt.Sprintf("%s (n=%d)", st, len(vals)))
	}
	p.Add(plotter.NewGrid(), b)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.Y.Min = 0
	p.Y.Label.Text = "messages / s (acknowledged and received)"
	p.X.Label.Text = "strategy"
	w := vg.Points(max(560, 150+130*float64(len(names))))
	return renderPlot(dir, "throughput-scenarios", w, vg.Points(360), p)
}

// plotScenarioLatency draws each measured scenario's receipt latency
// percentiles.
func plotScenarioLatency(dir string, scs []*Scenario) (*Figure, error) {
	scs = measured(scs)
	if len(scs) == 0 {
		return nil, nil
	}
	p := newPlot("Receipt latency percentiles per scenario (faults included)", meta(scs))
	n := 0
	for i, s := range scs {
		l := s.Result.Latency
		xys := plotter.XYs{}
		for _, q := range []struct{ q, v float64 }{{0.5, l.P50}, {0.9, l.P90}, {0.99, l.P99}, {0.999, l.P999}, {0.9999, l.P9999}} {
			if q.v > 0 {
				xys = append(xys, plotter.XY{X: nines(q.q), Y: q.v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		ln, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		ln.Color, pts.Color = seriesColour(i), seriesColour(i)
		ln.Width = vg.Points(1.2)
		p.Add(ln, pts)
		p.Legend.Add(fmt.Sprintf("%s [%s] (%s)", s.Result.Scenario, s.Result.Strategy, s.Run()), ln, pts)
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return percentileAxes(dir, "latency-scenarios", p)
}
