package report

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// plotLost draws a scenario's lost messages by the second they were sent,
// against its fault windows. Nil when nothing was lost.
func plotLost(dir, name string, s *Scenario) (*Figure, error) {
	r := s.Result
	if r.Lost == 0 {
		return nil, nil
	}
	p := newPlot(fmt.Sprintf("Lost messages by send time: %s (%d lost of %d acknowledged)", r.Scenario, r.Lost, r.Acknowledged), meta([]*Scenario{s}))
	faults, unavail := faultShades(s, true)
	p.Add(unavail, faults, plotter.NewGrid())
	h := &plotter.Histogram{Width: 1, FillColor: colourLoss}
	h.LineStyle.Color = seriesColour(1)
	h.LineStyle.Width = vg.Points(0.8)
	for _, b := range r.Timeline {
		if b.Lost > 0 {
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: float64(b.T), Max: float64(b.T + 1), Weight: float64(b.Lost)})
		}
	}
	p.Add(h)
	p.Legend.Add("lost (acknowledged, never received)", h)
	p.Legend.Add("fault window", faults)
	p.Legend.Add("unavailable", unavail)
	p.X.Min, p.X.Max = 0, max(r.EndS, float64(len(r.Timeline)))
	p.Y.Min = 0
	p.Y.Max *= 1.3 // room for the legend
	p.X.Label.Text = "send time since the first operation (s)"
	p.Y.Label.Text = "lost messages per second of send time"
	return renderPlot(dir, name, vg.Points(760), vg.Points(320), p)
}
