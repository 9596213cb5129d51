package checker

import (
	"github.com/montanaflynn/stats"
)

// Percentiles summarise a latency distribution, in milliseconds.
type Percentiles struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	// P9999 is meaningful only with 10,000 samples or more; below that it
	// is (close to) the maximum.
	P9999 float64 `json:"p99_99"`
	Max   float64 `json:"max"`
}

// percentiles computes Percentiles of samples (ms); zero for none.
func percentiles(samples []float64) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	data := stats.LoadRawData(samples)
	p := Percentiles{N: len(samples)}
	p.Mean, _ = stats.Mean(data)
	p.P50, _ = stats.Percentile(data, 50)
	p.P90, _ = stats.Percentile(data, 90)
	p.P99, _ = stats.Percentile(data, 99)
	p.P999, _ = stats.Percentile(data, 99.9)
	p.P9999, _ = stats.Percentile(data, 99.99)
	p.Max, _ = stats.Max(data)
	return p
}

// Summary describes one metric over repeats of a scenario (or any set of
// values), for reports that show spread.
type Summary struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
}

// Summarize computes a Summary; zero for no values. Stddev is the sample
// standard deviation (0 for one value).
func Summarize(values []float64) Summary {
	if len(values) == 0 {
		return Summary{}
	}
	data := stats.LoadRawData(values)
	s := Summary{N: len(values)}
	s.Mean, _ = stats.Mean(data)
	if len(values) > 1 {
		s.Stddev, _ = stats.StandardDeviationSample(data)
	}
	s.Min, _ = stats.Min(data)
	s.Median, _ = stats.Median(data)
	s.P90, _ = stats.Percentile(data, 90)
	s.Max, _ = stats.Max(data)
	return s
}
