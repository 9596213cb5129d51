package report

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/reports/result"
)

// htmlCell is a matrix cell as the HTML table shows it.
type htmlCell struct {
	Class, Text string
	Links       []htmlLink
}

type htmlLink struct{ Href, Text string }

type htmlScenario struct {
	Name, Strategy, Failure, Run, Verdict, Anchor string
	Seed                                          int64
	Attempted, Acknowledged, Lost, Duplicated     int
	Unknown                                       int
	Throughput, P99, Unavailable, DualActive      float64
	Summary                                       string
	Timeline, LostFig                             *Figure
	Attribution                                   checker.Attribution
	Parts                                         string
}

type htmlPage struct {
	Title      string
	Meta       string
	Failures   []string
	Rows       []htmlRow
	Scenarios  []htmlScenario
	Figures    []*Figure // overview figures (not per scenario)
	Benches    []*Bench
	Colours    map[string]template.CSS
	HasMatrix  bool
	BenchTable [][]string
	DR         *htmlDR
}

type htmlRow struct {
	Strategy string
	Cells    []htmlCell
}

// rel is target relative to the report folder, with forward slashes, for
// a link that works when the folder is opened from disk.
func rel(dir, target string) string {
	r, err := filepath.Rel(dir, target)
	if err != nil {
		r = target
	}
	return filepath.ToSlash(r)
}

// summaryLink is the link to a scenario's details: summary.md, else
// result.json.
func summaryLink(dir string, s *Scenario) string {
	p := filepath.Join(s.Dir, result.SummaryFile)
	if _, err := os.Stat(p); err != nil {
		p = filepath.Join(s.Dir, result.FileName)
	}
	a, _ := filepath.Abs(p)
	d, _ := filepath.Abs(dir)
	return rel(d, a)
}

func verdict(s *Scenario) string {
	switch {
	case s.Skipped != "":
		return "SKIP"
	case s.Result.Verdict != "":
		return s.Result.Verdict
	case s.Result.OK:
		return result.Pass
	}
	return result.Fail
}

func cssColour(c color.Color) template.CSS {
	r, g, b, _ := c.RGBA()
	return template.CSS(fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8))
}

func anchor(s *Scenario, i int) string { return fmt.Sprintf("s%d-%s", i, fileName(s.Result.Scenario)) }

func writeHTML(rep *Report) error {
	in, m := rep.in, rep.Matrix
	page := htmlPage{
		Title:     "lossbench report",
		Failures:  m.Failures,
		HasMatrix: len(in.Scenarios) > 0,
		Benches:   in.Benches,
		Colours: map[string]template.CSS{"noloss": cssColour(colourNoLoss), "wait": cssColour(colourWait),
			"loss": cssColour(colourLoss), "na": cssColour(colourNA)},
	}
	if len(in.Scenarios) > 0 {
		page.Meta = meta(in.Scenarios)
	}
	if len(in.Benches) > 0 {
		if page.Meta != "" {
			page.Meta += "; "
		}
		page.Meta += benchMeta(in.Benches, rep.host)
	}
	idx := map[*Scenario]int{}
	anchors := map[*Scenario]string{}
	for i, s := range in.Scenarios {
		idx[s] = i
		anchors[s] = anchor(s, i)
	}
	if len(in.Scenarios) > 0 || len(in.Errors) > 0 {
		page.DR = drHTML(rep, anchors)
	}
	for _, st := range m.Strategies {
		row := htmlRow{Strategy: st}
		for _, fl := range m.Failures {
			c := m.Cell(st, fl)
			if c == nil {
				row.Cells = append(row.Cells, htmlCell{Class: "none", Text: "–"})
				continue
			}
			hc := htmlCell{Class: map[Outcome]string{NoLoss: "noloss", Wait: "wait", Loss: "loss", NotMeasured: "na"}[c.Outcome],
				Text: strings.ReplaceAll(cellText(c), "\n", ", ")}
			if c.Duplicated > 0 {
				hc.Text += fmt.Sprintf(", %d duplicated", c.Duplicated)
			}
			for _, s := range append(append([]*Scenario{}, c.Measured...), c.Skipped...) {
				hc.Links = append(hc.Links, htmlLink{Href: "#" + anchor(s, idx[s]), Text: s.Result.Scenario + " (" + s.Run() + ")"})
			}
			row.Cells = append(row.Cells, hc)
		}
		page.Rows = append(page.Rows, row)
	}
	perScenario := map[*Figure]bool{rep.TradeOff: true}
	for i, s := range in.Scenarios {
		r := s.Result
		hs := htmlScenario{Name: r.Scenario, Strategy: r.Strategy, Failure: r.Failure, Run: s.Run(), Verdict: verdict(s),
			Anchor: anchor(s, i), Seed: r.Seed, Attempted: r.Attempted, Acknowledged: r.Acknowledged, Lost: r.Lost,
			Duplicated: r.Duplicated, Unknown: r.UnknownOutcomes, Throughput: r.Throughput, P99: r.Latency.P99,
			Unavailable: r.UnavailableS, DualActive: r.DualActiveS, Summary: summaryLink(rep.Dir, s), Timeline: rep.Timelines[i], LostFig: rep.Lost[i],
			Attribution: r.LossAttribution}
		if a := r.LossAttribution; r.Lost > 0 {
			hs.Parts = fmt.Sprintf("%d prefix, %d middle, %d postfix of the history", a.Prefix, a.Middle, a.Postfix)
			if a.RPOS != nil {
				hs.Parts += fmt.Sprintf("; observed RPO %.2f s (the oldest lost message was acknowledged that long before the fault)", *a.RPOS)
			}
		}
		perScenario[rep.Timelines[i]] = true
		if rep.Lost[i] != nil {
			perScenario[rep.Lost[i]] = true
		}
		page.Scenarios = append(page.Scenarios, hs)
	}
	for _, f := range rep.Figures {
		if !perScenario[f] {
			page.Figures = append(page.Figures, f)
		}
	}
	for _, b := range in.Benches {
		for _, c := range b.Report.Cells {
			page.BenchTable = append(page.BenchTable, []string{b.ID, c.Target, fmt.Sprint(c.Producers), fmt.Sprint(c.Size),
				fmt.Sprintf("%.0f", c.MsgsPerSec), fmt.Sprintf("%.2f", c.P50), fmt.Sprintf("%.2f", c.P99), fmt.Sprintf("%.2f", c.P999),
				fmt.Sprintf("%.2f", c.RatioToReference), fmt.Sprintf("%.2f", c.DiskFraction)})
		}
	}
	f, err := os.Create(rep.HTML())
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := pageTemplate.Execute(f, page); err != nil {
		f.Close()
		return fmt.Errorf("report: %s: %w", rep.HTML(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"img": func(f *Figure) template.URL {
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(f.png))
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1600px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #bbb;padding:.35em .6em;text-align:left;vertical-align:top}
td.num{text-align:right}
table.matrix td{min-width:9em}
td.noloss{background:{{index .Colours "noloss"}}} td.wait{background:{{index .Colours "wait"}}}
td.loss{background:{{index .Colours "loss"}}} td.na{background:{{index .Colours "na"}}} td.none{color:#999}
td.error{background:#f3c0f0} td.differs{outline:3px solid #b00020;outline-offset:-3px}
table.dr td{min-width:7em;font-size:.85em} table.dr th{font-size:.85em}
.legend span{display:inline-block;padding:.1em .6em;margin-right:.4em;border:1px solid #bbb}
figure{margin:1em 0 2em} figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444} small{color:#555} a{color:#0645ad}
</style></head><body>
<h1>{{.Title}}</h1>
<p><small>{{.Meta}}</small></p>
{{with .DR}}
<section id="headline"><h2>Which strategy keeps acknowledged messages, and at what cost</h2>
<p><small>Each cell: acknowledged messages lost (worst run over seeds and scenarios: count of acknowledged, fraction), duplicates, unavailable seconds (RTO), observed RPO, seconds with two masters acknowledging. A red frame marks a cell where a run missed its scenario's expectations (the hypothesis); {{.Differing}} cell(s) differ. Throughput from the bench of the same run: ratio to {{.Reference}} and fraction of the disk's fsync limit, p99 receipt latency, for 1 and 16 producers.</small></p>
<table class="matrix dr" id="dr-matrix">
<thead><tr><th>strategy \ failure</th>{{range .Columns}}<th>{{.}}</th>{{end}}<th>× {{.Reference}} 1p / 16p</th><th>of disk 1p / 16p</th><th>p99 ms 1p / 16p</th></tr></thead>
<tbody>{{range .Rows}}<tr><th>{{.Title}}</th>{{range .Cells}}<td class="{{.Class}}{{if .Differs}} differs{{end}}" title="{{.Tip}}">{{range $i, $l := .Lines}}{{if $i}}<br>{{end}}{{$l}}{{end}}{{range .Links}}<br><a href="{{.Href}}">{{.Text}}</a>{{end}}</td>{{end}}<td class="num" title="{{.Target}}">{{index .Bench 0}}</td><td class="num">{{index .Bench 1}}</td><td class="num">{{index .Bench 2}}</td></tr>
{{end}}</tbody></table>
{{with .TradeOff}}<figure id="fig-tradeoff"><img src="{{img .}}" alt="{{.Title}}"><figcaption>{{.Caption}} Files: <a href="{{.PNG}}">PNG</a>, <a href="{{.SVG}}">SVG</a>.</figcaption></figure>{{end}}
{{if .Missing}}<p><small>Not on the chart: {{.Missing}}.</small></p>{{end}}
</section>
{{end}}
{{if .HasMatrix}}
<h2 id="matrix">Loss matrix by scenario label</h2>
<p class="legend"><span style="background:{{index .Colours "noloss"}}">no loss</span><span style="background:{{index .Colours "wait"}}">wait</span><span style="background:{{index .Colours "loss"}}">loss</span><span style="background:{{index .Colours "na"}}">not measured</span></p>
<table class="matrix" id="loss-matrix">
<thead><tr><th>strategy \ failure</th>{{range .Failures}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr><th>{{.Strategy}}</th>{{range .Cells}}<td class="{{.Class}}">{{.Text}}{{range .Links}}<br><a href="{{.Href}}">{{.Text}}</a>{{end}}</td>{{end}}</tr>
{{end}}</tbody></table>
{{end}}
{{range .Figures}}<figure id="fig-{{.Name}}"><h2>{{.Title}}</h2><img src="{{img .}}" alt="{{.Title}}"><figcaption>{{.Caption}} Files: <a href="{{.PNG}}">PNG</a>, <a href="{{.SVG}}">SVG</a>.</figcaption></figure>
{{end}}
{{if .BenchTable}}<h2>Bench cells</h2>
<table><thead><tr><th>bench</th><th>target</th><th>producers</th><th>size B</th><th>msg/s</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>vs reference</th><th>of disk limit</th></tr></thead><tbody>
{{range .BenchTable}}<tr>{{range $i, $v := .}}<td{{if ge $i 2}} class="num"{{end}}>{{$v}}</td>{{end}}</tr>
{{end}}</tbody></table>{{end}}
{{if .Scenarios}}<h2>Scenarios</h2>
<table><thead><tr><th>scenario</th><th>strategy</th><th>failure</th><th>run</th><th>seed</th><th>verdict</th><th>attempted</th><th>acknowledged</th><th>lost</th><th>duplicated</th><th>unknown</th><th>msg/s</th><th>p99 ms</th><th>unavailable s</th><th>dual active s</th></tr></thead><tbody>
{{range .Scenarios}}<tr><td><a href="#{{.Anchor}}">{{.Name}}</a></td><td>{{.Strategy}}</td><td>{{.Failure}}</td><td>{{.Run}}</td><td class="num">{{.Seed}}</td><td>{{.Verdict}}</td><td class="num">{{.Attempted}}</td><td class="num">{{.Acknowledged}}</td><td class="num">{{.Lost}}</td><td class="num">{{.Duplicated}}</td><td class="num">{{.Unknown}}</td><td class="num">{{printf "%.0f" .Throughput}}</td><td class="num">{{printf "%.1f" .P99}}</td><td class="num">{{printf "%.1f" .Unavailable}}</td><td class="num">{{printf "%.1f" .DualActive}}</td></tr>
{{end}}</tbody></table>
{{range .Scenarios}}{{$s := .}}<section id="{{.Anchor}}"><h3>{{.Name}} <small>({{.Strategy}}, {{.Failure}}, run {{.Run}}, seed {{.Seed}}, {{.Verdict}})</small></h3>
<p><a href="{{.Summary}}">details (summary)</a></p>
{{if .Parts}}<p>Lost: {{.Parts}}.</p>
<table><thead><tr><th>fault window in force when acknowledged</th><th>node</th><th>lost</th><th>prefix</th><th>middle</th><th>postfix</th><th>acknowledged s</th></tr></thead><tbody>
{{range .Attribution.Groups}}<tr><td>{{.Window}}</td><td>{{.Node}}</td><td class="num">{{.Lost}}</td><td class="num">{{.Prefix}}</td><td class="num">{{.Middle}}</td><td class="num">{{.Postfix}}</td><td class="num">{{printf "%.1f" .FirstAckS}}–{{printf "%.1f" .LastAckS}}</td></tr>
{{end}}</tbody></table>{{end}}
{{with .Timeline}}<figure id="{{$s.Anchor}}-timeline"><img src="{{img .}}" alt="{{.Title}}"><figcaption>{{.Caption}} Files: <a href="{{.PNG}}">PNG</a>, <a href="{{.SVG}}">SVG</a>.</figcaption></figure>{{end}}
{{with .LostFig}}<figure id="{{$s.Anchor}}-lost"><img src="{{img .}}" alt="{{.Title}}"><figcaption>{{.Caption}} Files: <a href="{{.PNG}}">PNG</a>, <a href="{{.SVG}}">SVG</a>.</figcaption></figure>{{end}}
</section>
{{end}}{{end}}
</body></html>
`))
