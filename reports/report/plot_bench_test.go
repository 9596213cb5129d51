package report

import (
	"image/color"
	"testing"
)

// TestLimitColourMatchesItsBars checks that a disk limit line takes the
// colour of the bars of its producer count (it once took the next
// series' colour: the 1-producer limit drawn in the 16-producer bars'
// red), and grey when the run has no such bars.
func TestLimitColourMatchesItsBars(t *testing.T) {
	producers := []int{1, 16, 64}
	for k, n := range producers[:2] {
		if got, want := limitColour(producers, n), seriesColour(k); got != want {
			t.Errorf("limit of %d producers: colour %v, want its bars' %v", n, got, want)
		}
	}
	if got := limitColour([]int{4, 64}, 16); got != (color.Gray{Y: 110}) {
		t.Errorf("limit of 16 producers without such bars: %v, want grey", got)
	}
}
