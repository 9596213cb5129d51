package gate

import (
	"errors"
	"math"
	"os"
	"testing"
)

// FuzzParseBaseline checks that no input makes Parse panic, that a failure
// is always an ErrorList wrapping ErrBaseline whose every error names the
// file and a line (junk included), and that what parses is usable: named
// cells, budgets and floors that are numbers >= 0. Seeds: the checked-in
// baseline, the test baselines and testdata/fuzz/FuzzParseBaseline.
func FuzzParseBaseline(f *testing.F) {
	b, err := os.ReadFile(checkedIn)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(goodBaseline))
	f.Add([]byte(rowsBaseline))
	for _, tc := range parseErrorCases {
		f.Add([]byte(tc.yaml))
	}
	f.Add([]byte("\x00\x01junk\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse("b.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.Is(err, ErrBaseline) || !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %q is not a non-empty ErrorList wrapping ErrBaseline", err, err)
			}
			for _, e := range list {
				if e.File != "b.yaml" || e.Line < 1 || e.Col < 0 || e.Msg == "" {
					t.Fatalf("error without a place: %+v", e)
				}
			}
			return
		}
		ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
		for _, c := range b.Cells {
			if c.Row == "" || c.Failure == "" || c.Line < 1 ||
				!ok(c.Lost.Max) || !ok(c.Duplicated.Max) || !ok(c.UnavailableS.Max) {
				t.Fatalf("bad cell %+v", c)
			}
		}
		for _, fl := range b.Throughput {
			if fl.Strategy == "" || fl.Line < 1 || !ok(fl.MinRatio) || fl.Producers < 0 {
				t.Fatalf("bad floor %+v", fl)
			}
		}
	})
}
