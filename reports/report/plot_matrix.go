package report

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// cellText is what a matrix cell says: the outcome and the worst counts.
func cellText(c *Cell) string {
	if c == nil {
		return ""
	}
	switch c.Outcome {
	case NotMeasured:
		return "skipped"
	case Loss:
		return fmt.Sprintf("%d lost", c.Lost)
	case Wait:
		return fmt.Sprintf("0 lost\nwait %.0f s", c.UnavailableS)
	}
	return "0 lost"
}

// matrixCells draws the loss matrix's coloured cells at integer
// coordinates (failure index, strategy index).
type matrixCells struct{ m *Matrix }

// Plot implements plot.Plotter.
func (mc matrixCells) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	ts := textStyle(9)
	for j, st := range mc.m.Strategies {
		for i, fl := range mc.m.Failures {
			cell := mc.m.Cell(st, fl)
			if cell == nil {
				continue
			}
			x0, x1 := tx(float64(i)-0.47), tx(float64(i)+0.47)
			y0, y1 := ty(float64(j)-0.45), ty(float64(j)+0.45)
			c.FillPolygon(outcomeColour(cell.Outcome), []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
			txt := cellText(cell)
			if n := len(cell.Measured); n > 1 {
				txt += fmt.Sprintf("\n(worst of %d)", n)
			}
			c.FillText(ts, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, txt)
		}
	}
}

// DataRange implements plot.DataRanger.
func (mc matrixCells) DataRange() (xmin, xmax, ymin, ymax float64) {
	// One empty column on the right holds the legend.
	return -0.5, float64(len(mc.m.Failures)) + 0.5, -0.5, float64(len(mc.m.Strategies)) - 0.5
}

// swatch is a legend entry: a filled square.
type swatch struct{ o Outcome }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(outcomeColour(s.o), []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

// plotMatrix draws the loss matrix.
func plotMatrix(dir string, m *Matrix, scs []*Scenario) (*Figure, error) {
	p := newPlot("Loss matrix: acknowledged messages lost (count, worst run)", meta(scs))
	p.Add(matrixCells{m})
	p.NominalX(m.Failures...)
	p.NominalY(m.Strategies...)
	p.X.Label.Text = "failure"
	p.Y.Label.Text = "strategy"
	p.X.Tick.Length, p.Y.Tick.Length = 0, 0
	p.X.LineStyle.Width, p.Y.LineStyle.Width = 0, 0
	for _, o := range []Outcome{NoLoss, Wait, Loss, NotMeasured} {
		p.Legend.Add(o.String(), swatch{o})
	}
	p.Legend.Top = true
	p.Legend.Left = false
	w := vg.Points(140 + 120*float64(len(m.Failures)+1))
	h := vg.Points(110 + 46*float64(max(len(m.Strategies), 3)))
	return renderPlot(dir, "loss-matrix", max(w, vg.Points(480)), h, p)
}
