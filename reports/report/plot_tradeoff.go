package report

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// TradeOffProducers is the producer count whose throughput the trade-off
// chart puts on x (the bench's busiest cell, where group commit pays).
const TradeOffProducers = 16

// plotTradeOff draws, per strategy that was both benched and measured, its
// throughput (x, messages/s with TradeOffProducers producers) against its
// worst loss over the failures (y, % of acknowledged). Nil when no row has
// both.
func plotTradeOff(dir string, m *DRMatrix, scs []*Scenario) (*Figure, []string, error) {
	var xys plotter.XYs
	var labels []string
	var missing []string
	for _, r := range m.Rows {
		worst, measured := m.WorstLoss(r)
		tp := m.Throughput[r]
		var c *bench.Cell
		if tp != nil {
			c = tp.ByProducers[TradeOffProducers]
		}
		switch {
		case measured && c != nil:
			xys = append(xys, plotter.XY{X: c.MsgsPerSec, Y: worst * 100})
			labels = append(labels, scenario.RowTitle(r))
		case measured:
			missing = append(missing, scenario.RowTitle(r)+" (not benched)")
		case c != nil:
			missing = append(missing, scenario.RowTitle(r)+" (no failure measured)")
		}
	}
	if len(xys) == 0 {
		return nil, missing, nil
	}
	p := newPlot(fmt.Sprintf("Trade-off: throughput (%d producers) against worst loss", TradeOffProducers), meta(scs)+" · bench "+m.Bench.ID)
	p.Add(plotter.NewGrid())
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, nil, err
	}
	sc.GlyphStyle.Shape = draw.CircleGlyph{}
	sc.GlyphStyle.Radius = vg.Points(4)
	sc.GlyphStyle.Color = seriesColour(0)
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font.Size = vg.Points(8)
		lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
	}
	p.Add(sc, lb)
	p.X.Label.Text = fmt.Sprintf("messages/s acknowledged and consumed, %d producers (bench, same run)", TradeOffProducers)
	p.Y.Label.Text = "worst loss over the failures (% of acknowledged)"
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max *= 1.25 // room for the labels
	p.Y.Max = max(p.Y.Max*1.15, 5)
	f, err := renderPlot(dir, "tradeoff", vg.Points(640), vg.Points(380), p)
	return f, missing, err
}
