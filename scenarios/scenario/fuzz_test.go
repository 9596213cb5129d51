package scenario_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lossbench/lossbench/scenarios/scenario"
)

// FuzzParse checks that no input makes Parse panic, that a failure is
// always a non-empty ErrorList naming the file, and that whatever parses
// resolves to the same plan twice. Seeds: the suite, the matrix, the broken files and
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"../suite/*.yaml", "../matrix/*.yaml", "testdata/broken/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(randomFaults))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scenario.Parse("fuzz.yaml", data)
		if err != nil {
			var list scenario.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %q is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Pos.Line < 0 || e.Pos.Col < 0 {
					t.Fatalf("bad error %+v", e)
				}
			}
			return
		}
		p1, err := s.Resolve(s.Seed)
		if err != nil {
			t.Fatalf("valid scenario does not resolve: %v", err)
		}
		p2, _ := s.Resolve(s.Seed)
		if !reflect.DeepEqual(p1, p2) {
			t.Fatal("same seed, different plans")
		}
	})
}
