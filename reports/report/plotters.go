package report

import (
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/lossbench/lossbench/chaos/checker"
)

// shade draws windows as bands over the whole height of the data area,
// each labelled at the top when label is set (the way Jepsen marks
// nemesis intervals).
type shade struct {
	windows []checker.Window
	labels  []string
	fill    color.Color
}

// Plot implements plot.Plotter.
func (s shade) Plot(c draw.Canvas, p *plot.Plot) {
	tx, _ := p.Transforms(&c)
	ts := textStyle(8)
	ts.YAlign = draw.YTop
	for i, w := range s.windows {
		x0, x1 := tx(max(w.StartS, p.X.Min)), tx(min(w.EndS, p.X.Max))
		if x1 <= x0 {
			x1 = x0 + vg.Points(1)
		}
		c.FillPolygon(s.fill, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		if i < len(s.labels) && s.labels[i] != "" {
			c.FillText(ts, vg.Point{X: (x0 + x1) / 2, Y: c.Max.Y - vg.Points(2)}, s.labels[i])
		}
	}
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (s shade) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.fill, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

// bar is one bar of a bar group: its centre, height and optional spread.
type bar struct {
	x, y, lo, hi float64
	spread       bool
}

// bars draws bars in data coordinates with min–max whiskers.
type bars struct {
	bars  []bar
	width float64
	fill  color.Color
}

// Plot implements plot.Plotter.
func (b bars) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	ls := draw.LineStyle{Color: color.Black, Width: vg.Points(1)}
	base := max(p.Y.Min, 0)
	if _, log := p.Y.Scale.(plot.LogScale); log {
		base = p.Y.Min
	}
	for _, r := range b.bars {
		x0, x1 := tx(r.x-b.width/2), tx(r.x+b.width/2)
		y0, y1 := ty(base), ty(r.y)
		c.FillPolygon(b.fill, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
		c.StrokeLines(ls, []vg.Point{{X: x0, Y: y0}, {X: x0, Y: y1}, {X: x1, Y: y1}, {X: x1, Y: y0}})
		if r.spread && r.hi > r.lo {
			xm, cap := tx(r.x), (x1-x0)/4
			lo, hi := ty(r.lo), ty(r.hi)
			c.StrokeLine2(ls, xm, lo, xm, hi)
			c.StrokeLine2(ls, xm-cap, lo, xm+cap, lo)
			c.StrokeLine2(ls, xm-cap, hi, xm+cap, hi)
		}
	}
}

// DataRange implements plot.DataRanger.
func (b bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax, ymin, ymax = math.Inf(1), math.Inf(-1), 0, 0
	for _, r := range b.bars {
		xmin, xmax = min(xmin, r.x-b.width/2), max(xmax, r.x+b.width/2)
		ymax = max(ymax, r.y, r.hi)
	}
	return xmin, xmax, ymin, ymax
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (b bars) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(b.fill, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

// percentileTicks label a -log10(1-p) axis with the percentiles.
type percentileTicks struct{}

// Ticks implements plot.Ticker.
func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, p := range []float64{50, 90, 99, 99.9, 99.99, 99.999} {
		x := nines(p / 100)
		if x >= lo-1e-9 && x <= hi+1e-9 {
			out = append(out, plot.Tick{Value: x, Label: "p" + strconv.FormatFloat(p, 'f', -1, 64)})
		}
	}
	return out
}

// nines maps a quantile to the percentile axis: -log10(1-q), so p90 is 1,
// p99 2, p99.9 3.
func nines(q float64) float64 { return -math.Log10(1 - q) }

// logTicks are plot.LogTicks that also label 2 and 5 within a decade when
// the range spans few decades, so a narrow log axis still has numbers.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	few := hi/lo < 1000
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || few {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			out = append(out, t)
		}
	}
	return out
}
