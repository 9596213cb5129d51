// Package report draws what users look at after a run: report.html
// (self-contained, images inlined as data: URIs, opens from disk with no
// network), report.md (for a pull-request comment) and every plot as PNG
// and SVG under plots/, from one or more run folders (result.json per
// scenario) and bench folders (bench.json).
//
// Figures, each stating its unit, run ids, seeds and machine:
//
//	loss-matrix            strategy × failure, coloured by outcome, lost count
//	throughput-<bench>     msgs/s per store and producer count, min–max of
//	                       repeats, the disk's fdatasync limits as lines
//	throughput-scenarios   msgs/s per strategy over its scenario runs
//	latency-<bench>        receipt latency percentiles per store
//	latency-scenarios      receipt latency percentiles per scenario
//	timeline-<scenario>    rates, latency and errors per second, faults shaded
//	lost-<scenario>        lost messages by send time against fault windows
package report

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lossbench/lossbench/reports/result"
)

// Output file names.
const (
	HTMLFile = "report.html"
	MDFile   = "report.md"
	plotsDir = "plots"
)

// Options tune Write. The zero value uses the defaults.
type Options struct {
	// WaitAfter is the unavailability (s) from which a lossless scenario
	// counts as "wait"; default DefaultWaitAfter.
	WaitAfter float64
	// Host describes the machine drawing the report; bench.json records
	// none, so bench figures name this one. Default result.Collect.
	Host *result.Environment
}

// Report is what Write produced.
type Report struct {
	// Dir is the folder written to.
	Dir    string
	Matrix *Matrix
	// DR is the DR matrix of the headline; TradeOff its chart (nil without
	// a bench), TradeOffMissing the rows it could not place, and why.
	DR              *DRMatrix
	TradeOff        *Figure
	TradeOffMissing []string
	// Figures in the order the report shows them.
	Figures []*Figure
	// Timelines and Lost are the per-scenario figures, by scenario index
	// in Input.Scenarios (nil where there is none).
	Timelines, Lost []*Figure
	in              *Input
	host            result.Environment
}

// HTML and Markdown are the report's paths.
func (r *Report) HTML() string     { return filepath.Join(r.Dir, HTMLFile) }
func (r *Report) Markdown() string { return filepath.Join(r.Dir, MDFile) }

// Write draws every figure of in into dir and writes report.html and
// report.md there.
func Write(dir string, in *Input, opt Options) (*Report, error) {
	if opt.WaitAfter <= 0 {
		opt.WaitAfter = DefaultWaitAfter
	}
	host := result.Environment{}
	if opt.Host != nil {
		host = *opt.Host
	} else if len(in.Benches) > 0 {
		host = result.Collect(context.Background())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	rep := &Report{Dir: dir, in: in, host: host, Matrix: NewMatrix(in.Scenarios, opt.WaitAfter), DR: NewDRMatrix(in, opt.WaitAfter)}
	add := func(f *Figure, err error) error {
		if err != nil {
			return err
		}
		if f != nil {
			rep.Figures = append(rep.Figures, f)
		}
		return nil
	}
	if len(in.Scenarios) > 0 && rep.DR.Bench != nil {
		f, missing, err := plotTradeOff(dir, rep.DR, in.Scenarios)
		if err := add(f, err); err != nil {
			return nil, err
		}
		rep.TradeOff, rep.TradeOffMissing = f, missing
		if f != nil {
			f.Title, f.Caption = "Trade-off: throughput against worst loss", fmt.Sprintf("Per strategy: messages/s acknowledged and consumed with %d producers in the bench of the same run (x) against the largest fraction of acknowledged messages lost over the failures measured (y, %%). Bottom right keeps everything and is fast.", TradeOffProducers)
		}
	}
	if len(in.Scenarios) > 0 {
		f, err := plotMatrix(dir, rep.Matrix, in.Scenarios)
		if err := add(f, err); err != nil {
			return nil, err
		}
		if f != nil {
			f.Title, f.Caption = "Loss matrix (figure)", "Outcome per strategy (rows) and failure (columns): no loss, wait (nothing lost, unavailable ≥ "+
				fmt.Sprintf("%.0f s", opt.WaitAfter)+" or a fault never recovered), loss with the count of acknowledged messages never received (worst run)."
		}
	}
	// One pair of figures per bench: benches on other disks or at other
	// times are not comparable, and each has its own disk limits.
	for _, b := range in.Benches {
		one := []*Bench{b}
		f, err := plotBenchThroughput(dir, "throughput-"+fileName(b.ID), one, host)
		if err := add(f, err); err != nil {
			return nil, err
		}
		f.Title, f.Caption = "Throughput per store ("+b.ID+")", "Messages acknowledged and consumed per second, one bar per producer count; whiskers span the repeats; dashed lines are the disk's own fdatasync limits measured in the same bench run."
		f, err = plotBenchLatency(dir, "latency-"+fileName(b.ID), one, host)
		if err := add(f, err); err != nil {
			return nil, err
		}
		f.Title, f.Caption = "Latency percentiles per store ("+b.ID+")", "Send-to-receipt latency in ms (log) at p50, p90, p99, p99.9, p99.99; the percentile axis is -log10(1-p), so each tick is one more nine. Dashed: more than one producer."
	}
	if len(in.Scenarios) > 0 {
		f, err := plotScenarioThroughput(dir, rep.Matrix, in.Scenarios)
		if err := add(f, err); err != nil {
			return nil, err
		}
		if f != nil {
			f.Title, f.Caption = "Throughput per strategy (scenarios)", "Messages acknowledged and received per second of each scenario's send phase, faults included; the bar is the median over runs, whiskers min–max."
		}
		f, err = plotScenarioLatency(dir, in.Scenarios)
		if err := add(f, err); err != nil {
			return nil, err
		}
		if f != nil {
			f.Title, f.Caption = "Latency percentiles per scenario", "Send-to-receipt latency in ms (log) at p50, p90, p99, p99.9, p99.99 over each whole scenario, faults included."
		}
	}
	names := make([]string, len(in.Scenarios))
	for i, s := range in.Scenarios {
		names[i] = fileName(s.Result.Scenario)
	}
	names = uniq(names)
	rep.Timelines = make([]*Figure, len(in.Scenarios))
	rep.Lost = make([]*Figure, len(in.Scenarios))
	for i, s := range in.Scenarios {
		f, err := plotTimeline(dir, "timeline-"+names[i], s)
		if err != nil {
			return nil, err
		}
		f.Title = "Timeline: " + s.Result.Scenario
		f.Caption = "Per second: sends invoked, acknowledged and received (messages/s); p50 and max receipt latency (ms, log); failed and unknown-outcome sends (sends/s). Orange bands: fault windows, labelled; grey: unavailability."
		rep.Timelines[i] = f
		rep.Figures = append(rep.Figures, f)
		lf, err := plotLost(dir, "lost-"+names[i], s)
		if err != nil {
			return nil, err
		}
		if lf != nil {
			lf.Title = "Lost by send time: " + s.Result.Scenario
			lf.Caption = fmt.Sprintf("Acknowledged messages never received, counted by the second they were sent (messages); %d before, %d during, %d after a fault window.",
				s.Result.LostByPhase["before"], s.Result.LostByPhase["during"], s.Result.LostByPhase["after"])
			rep.Lost[i] = lf
			rep.Figures = append(rep.Figures, lf)
		}
	}
	if err := writeHTML(rep); err != nil {
		return nil, err
	}
	if err := writeMarkdown(rep); err != nil {
		return nil, err
	}
	return rep, nil
}
