package report

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// faultShades are the fault windows (labelled) and the unavailability
// windows of a scenario, as plotters.
func faultShades(s *Scenario, label bool) (faults, unavail shade) {
	r := s.Result
	faults = shade{fill: colourFault}
	for _, f := range r.Faults {
		faults.windows = append(faults.windows, f.Window)
		if label {
			faults.labels = append(faults.labels, f.Name)
		}
	}
	unavail = shade{windows: r.Unavailable, fill: colourUnavail}
	return faults, unavail
}

// line is a coloured line plotter for xys, nil when xys is empty.
func line(xys plotter.XYs, i int, dashed bool) *plotter.Line {
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil
	}
	l.Color = seriesColour(i)
	l.Width = vg.Points(1.2)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	}
	return l
}

// addLine adds a named line if it has points.
func addLine(p *plot.Plot, name string, xys plotter.XYs, i int, dashed bool) {
	if l := line(xys, i, dashed); l != nil {
		p.Add(l)
		p.Legend.Add(name, l)
	}
}

// plotTimeline draws a scenario's second-by-second timeline in three
// aligned panels: rates, acknowledgement latency, errors; fault windows
// shaded and labelled, unavailability shaded grey.
func plotTimeline(dir, name string, s *Scenario) (*Figure, error) {
	r := s.Result
	end := max(r.EndS, float64(len(r.Timeline)))
	var invoked, acked, received, p50, maxLat, failed, unknown plotter.XYs
	for _, b := range r.Timeline {
		x := float64(b.T) + 0.5
		invoked = append(invoked, plotter.XY{X: x, Y: float64(b.Invoked)})
		acked = append(acked, plotter.XY{X: x, Y: float64(b.Acked)})
		received = append(received, plotter.XY{X: x, Y: float64(b.Received)})
		failed = append(failed, plotter.XY{X: x, Y: float64(b.Failed)})
		unknown = append(unknown, plotter.XY{X: x, Y: float64(b.Unknown)})
		if b.P50Ms > 0 {
			p50 = append(p50, plotter.XY{X: x, Y: b.P50Ms})
		}
		if b.MaxMs > 0 {
			maxLat = append(maxLat, plotter.XY{X: x, Y: b.MaxMs})
		}
	}

	rate := newPlot("Timeline: "+r.Scenario+" ("+r.Strategy+", "+r.Failure+")", meta([]*Scenario{s}))
	lat, errs := newPlot("", ""), newPlot("", "")
	lat.Title.Text, errs.Title.Text = "", ""
	for i, p := range []*plot.Plot{rate, lat, errs} {
		faults, unavail := faultShades(s, i == 0)
		p.Add(unavail, faults)
		p.X.Min, p.X.Max = 0, end
		p.Add(plotter.NewGrid())
		if i < 2 {
			p.X.Tick.Label.Color = color.Transparent
		}
	}
	faults, unavail := faultShades(s, false)
	rate.Y.Label.Text = "messages / s"
	addLine(rate, "sent (invoked)", invoked, 0, false)
	addLine(rate, "acknowledged (receipt)", acked, 2, false)
	addLine(rate, "received by consumers", received, 1, true)
	rate.Legend.Add("fault window", faults)
	rate.Legend.Add("unavailable (no ack ≥ 1 s)", unavail)
	rate.Y.Min = 0

	lat.Y.Label.Text = "ack latency (ms, log)"
	addLine(lat, "p50 per second", p50, 0, false)
	addLine(lat, "max per second", maxLat, 3, false)
	if len(p50)+len(maxLat) > 0 {
		lat.Y.Scale = plot.LogScale{}
		lat.Y.Tick.Marker = logTicks{}
	}

	errs.Y.Label.Text = "sends / s"
	addLine(errs, "failed", failed, 1, false)
	addLine(errs, "outcome unknown", unknown, 4, true)
	errs.Y.Min = 0
	errs.Y.Max = max(errs.Y.Max, 1)
	errs.X.Label.Text = "time since the first operation (s)"

	// Headroom above the data for the legends (top right).
	rate.Y.Max *= 1.55
	errs.Y.Max *= 1.4
	if _, log := lat.Y.Scale.(plot.LogScale); log {
		lat.Y.Max *= 10
	}
	plots := [][]*plot.Plot{{rate}, {lat}, {errs}}
	w, h := vg.Points(760), vg.Points(620)
	return render(dir, name, w, h, func(dc draw.Canvas) {
		cs := plot.Align(plots, draw.Tiles{Rows: 3, Cols: 1, PadY: vg.Points(4), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(10)}, dc)
		for i, row := range plots {
			row[0].Draw(cs[i][0])
		}
	})
}
