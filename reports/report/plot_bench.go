package report

import (
	"fmt"
	"image/color"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/reports/result"
)

// benchCells are every bench's cells of one message size, in the order
// of targets as they first appear.
func benchCells(bs []*Bench) (targets []string, producers []int, cells []bench.Cell) {
	seenT, seenP := map[string]bool{}, map[int]bool{}
	for _, b := range bs {
		for _, c := range b.Report.Cells {
			if !seenT[c.Target] {
				seenT[c.Target] = true
				targets = append(targets, c.Target)
			}
			if !seenP[c.Producers] {
				seenP[c.Producers] = true
				producers = append(producers, c.Producers)
			}
			cells = append(cells, c)
		}
	}
	sort.Ints(producers)
	return targets, producers, cells
}

// spread is min and max of a cell's repeats (the median itself when there
// is one repeat).
func spread(c bench.Cell) (lo, hi float64) {
	lo, hi = c.MsgsPerSec, c.MsgsPerSec
	for _, r := range c.Repeats {
		lo, hi = min(lo, r), max(hi, r)
	}
	return lo, hi
}

// plotBenchThroughput draws msgs/s per target, a bar per producer count
// with the min–max of the repeats, and the disk's fdatasync limits as
// dashed lines.
func plotBenchThroughput(dir, name string, bs []*Bench, host result.Environment) (*Figure, error) {
	targets, producers, cells := benchCells(bs)
	p := newPlot("Throughput per store: messages acknowledged and consumed per second (median, whiskers min–max of repeats)", benchMeta(bs, host))
	idx := map[string]int{}
	for i, t := range targets {
		idx[t] = i
	}
	p.Add(plotter.NewGrid())
	width := 0.8 / float64(len(producers))
	for k, n := range producers {
		b := bars{width: width * 0.9, fill: seriesColour(k)}
		for _, c := range cells {
			if c.Producers != n {
				continue
			}
			lo, hi := spread(c)
			x := float64(idx[c.Target]) - 0.4 + width*(float64(k)+0.5)
			b.bars = append(b.bars, bar{x: x, y: c.MsgsPerSec, lo: lo, hi: hi, spread: len(c.Repeats) > 1})
		}
		p.Add(b)
		p.Legend.Add(fmt.Sprintf("%d %s", n, plural("producer", n)), b)
	}
	disk := bs[len(bs)-1].Report.Disk
	for _, ref := range []struct {
		v         float64
		producers int
		name      string
	}{
		{disk.SyncsPerSec, 1, "disk limit, 1 producer: %.0f fdatasync/s (4 KiB)"},
		{disk.Grouped16PerSec, 16, "disk limit, 16 producers: %.0f 4 KiB writes/s at 16 per fdatasync"},
	} {
		if ref.v <= 0 {
			continue
		}
		v := ref.v
		f := plotter.NewFunction(func(float64) float64 { return v })
		f.Color = limitColour(producers, ref.producers)
		f.Width = vg.Points(1.2)
		f.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(f)
		p.Legend.Add(fmt.Sprintf(ref.name, v), f)
	}
	p.NominalX(targets...)
	p.X.Min, p.X.Max = -0.5, float64(len(targets))-0.5
	p.Y.Min = 0
	p.Y.Max = max(p.Y.Max, disk.Grouped16PerSec, disk.SyncsPerSec) * 1.35 // room for the legend
	p.Y.Label.Text = "messages / s"
	p.X.Label.Text = "store (refbroker target)"
	w := vg.Points(max(640, 150+110*float64(len(targets))))
	fig, err := renderPlot(dir, name, w, vg.Points(400), p)
	return fig, err
}

// limitColour is the colour of the bars of n producers, so that a disk
// limit line reads with the bars it bounds; grey when the run has no such
// bars.
func limitColour(producers []int, n int) color.Color {
	if k := slices.Index(producers, n); k >= 0 {
		return seriesColour(k)
	}
	return color.Gray{Y: 110}
}

// plotBenchLatency draws each (target, producers) cell's receipt latency
// percentiles on a percentile axis scaled as -log10(1-p).
func plotBenchLatency(dir, name string, bs []*Bench, host result.Environment) (*Figure, error) {
	_, _, cells := benchCells(bs)
	p := newPlot("Receipt latency percentiles per store", benchMeta(bs, host))
	for i, c := range cells {
		xys := plotter.XYs{}
		for _, q := range []struct{ q, v float64 }{{0.5, c.P50}, {0.9, c.P90}, {0.99, c.P99}, {0.999, c.P999}, {0.9999, c.P9999}} {
			if q.v > 0 {
				xys = append(xys, plotter.XY{X: nines(q.q), Y: q.v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = seriesColour(i), seriesColour(i)
		l.Width = vg.Points(1.2)
		if c.Producers > 1 {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(l, pts)
		p.Legend.Add(fmt.Sprintf("%s, %d %s, %d B", c.Target, c.Producers, plural("producer", c.Producers), c.Size), l, pts)
	}
	return percentileAxes(dir, name, p)
}

// percentileAxes finishes a percentile-curve plot: log latency, the
// percentile axis from p50 to p99.99, legend at the top left.
func percentileAxes(dir, name string, p *plot.Plot) (*Figure, error) {
	p.X.Min, p.X.Max = nines(0.5)-0.1, nines(0.9999)+0.1
	p.X.Tick.Marker = percentileTicks{}
	p.X.Label.Text = "percentile (axis scaled as -log10(1-p))"
	p.Y.Label.Text = "latency, send to receipt (ms, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Y.Max *= 4 // room for the legend above the curves
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return renderPlot(dir, name, vg.Points(680), vg.Points(440), p)
}
