package report

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/lossbench/lossbench/reports/result"
)

// Figure is one plot written as PNG and SVG.
type Figure struct {
	// Name is the file name without extension, e.g. "timeline-journal-batch-kill9".
	Name string
	// Title is the heading in the report; Caption says what is drawn, in
	// which unit, from which run, seed and machine.
	Title, Caption string
	// PNG and SVG are the files, relative to the report's folder.
	PNG, SVG string
	// png is the PNG's bytes, inlined into report.html.
	png []byte
}

// dpi of the PNGs: sharp enough for a HiDPI screen at the SVG's size.
const dpi = 144

// render draws with fn on a canvas of w×h and writes dir/plots/name.png
// and .svg.
func render(dir, name string, w, h vg.Length, fn func(draw.Canvas)) (*Figure, error) {
	if err := os.MkdirAll(filepath.Join(dir, plotsDir), 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	f := &Figure{Name: name, PNG: filepath.Join(plotsDir, name+".png"), SVG: filepath.Join(plotsDir, name+".svg")}

	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	fn(draw.New(img))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("report: %s: %w", f.PNG, err)
	}
	f.png = buf.Bytes()
	if err := os.WriteFile(filepath.Join(dir, f.PNG), f.png, 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}

	// A buffer of its own: f.png keeps the PNG's bytes for report.html.
	svg := vgsvg.New(w, h)
	fn(draw.New(svg))
	var sbuf bytes.Buffer
	if _, err := svg.WriteTo(&sbuf); err != nil {
		return nil, fmt.Errorf("report: %s: %w", f.SVG, err)
	}
	if err := os.WriteFile(filepath.Join(dir, f.SVG), sbuf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return f, nil
}

// renderPlot renders one plot.
func renderPlot(dir, name string, w, h vg.Length, p *plot.Plot) (*Figure, error) {
	return render(dir, name, w, h, p.Draw)
}

// newPlot is a plot with the report's fonts and a two-line title: what,
// then where it comes from (meta).
func newPlot(title, meta string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title + "\n" + meta
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(10)
		a.Tick.Label.Font.Size = vg.Points(9)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.Top = true
	return p
}

// machine describes an environment in a few words.
func machine(e result.Environment) string {
	var parts []string
	if e.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d CPUs", e.CPUs))
	}
	if e.Kernel != "" {
		parts = append(parts, e.Kernel)
	}
	if len(parts) == 0 {
		return "machine not recorded"
	}
	return strings.Join(parts, ", ")
}

// meta is the provenance line of a figure over scenarios: run ids, seeds
// and machines, each listed once.
func meta(scs []*Scenario) string {
	runs, seeds, machines := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range scs {
		runs[s.Run()] = true
		seeds[fmt.Sprint(s.Result.Seed)] = true
		machines[machine(s.Result.Environment)] = true
	}
	return fmt.Sprintf("%s %s · %s %s · %s", plural("run", len(runs)), join(runs), plural("seed", len(seeds)), join(seeds), join(machines))
}

// benchMeta is the provenance line of a figure over benches. bench.json
// records no machine, so host (where the report is drawn) stands in, said
// as such.
func benchMeta(bs []*Bench, host result.Environment) string {
	ids := map[string]bool{}
	for _, b := range bs {
		ids[b.ID] = true
	}
	return fmt.Sprintf("%s · no seed (fixed workload) · report host: %s", join(ids), machine(host))
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func join(set map[string]bool) string {
	return strings.Join(sorted(set), ", ")
}

// Colours shared by figures and the HTML table.
var (
	colourNoLoss  = color.RGBA{R: 0xa5, G: 0xd6, B: 0xa7, A: 0xff}
	colourWait    = color.RGBA{R: 0xff, G: 0xe0, B: 0x82, A: 0xff}
	colourLoss    = color.RGBA{R: 0xef, G: 0x9a, B: 0x9a, A: 0xff}
	colourNA      = color.RGBA{R: 0xe0, G: 0xe0, B: 0xe0, A: 0xff}
	colourFault   = color.NRGBA{R: 0xff, G: 0x70, B: 0x43, A: 0x48}
	colourUnavail = color.NRGBA{R: 0x60, G: 0x60, B: 0x60, A: 0x30}
)

func outcomeColour(o Outcome) color.Color {
	switch o {
	case NoLoss:
		return colourNoLoss
	case Wait:
		return colourWait
	case Loss:
		return colourLoss
	}
	return colourNA
}

// series is a fixed palette of distinguishable line colours.
var series = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
}

func seriesColour(i int) color.Color { return series[i%len(series)] }

// textStyle is a plain text style of size pt.
func textStyle(pt float64) draw.TextStyle {
	return draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, vg.Points(pt)), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YCenter}
}

// fileName makes a scenario name safe as a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// uniq returns names made unique by suffixes -2, -3, … in order.
func uniq(names []string) []string {
	seen := map[string]int{}
	out := make([]string, len(names))
	for i, n := range names {
		seen[n]++
		if seen[n] > 1 {
			out[i] = fmt.Sprintf("%s-%d", n, seen[n])
		} else {
			out[i] = n
		}
	}
	return out
}
