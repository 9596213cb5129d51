package bench

import (
	"testing"
	"time"
)

func TestProbeDiskMeasuresSomething(t *testing.T) {
	df, err := ProbeDisk(t.TempDir(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if df.SyncsPerSec <= 0 || df.Grouped16PerSec <= 0 {
		t.Fatalf("probe measured nothing: %+v", df)
	}
	t.Logf("fdatasync 4KiB: %.0f/s; 16 per sync: %.0f writes/s", df.SyncsPerSec, df.Grouped16PerSec)
}

func TestQuantileNearestRank(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for i := range d {
		d[i] *= time.Millisecond
	}
	cases := []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.9, 9}, {0.99, 10}, {0, 1}, {1, 10}}
	for _, c := range cases {
		if got := quantileMS(d, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantileMS(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v", got)
	}
}
