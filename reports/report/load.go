package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lossbench/lossbench/chaos/bench"
	"github.com/lossbench/lossbench/reports/result"
)

// BenchFile is the name of `lossbench bench`'s output in its folder.
const BenchFile = "bench.json"

// maxDepth bounds the search for result.json and bench.json under each
// folder given: DIR may be a scenario's folder, a run's, or the folder
// holding runs (DIR/<run-id>/<scenario>/result.json is depth 2).
const maxDepth = 3

// Scenario is one scenario's result as found on disk.
type Scenario struct {
	// Dir is the scenario's folder.
	Dir    string
	Result *result.Result
	// Skipped says why the run could not measure the scenario (from the
	// result's "skipped: " note), empty when it was measured.
	Skipped string
}

// Run is the name of the run the scenario belongs to: the result's run id,
// else its parent folder's name.
func (s *Scenario) Run() string {
	if s.Result.Run != "" {
		return s.Result.Run
	}
	return filepath.Base(filepath.Dir(s.Dir))
}

// Bench is one bench.json.
type Bench struct {
	Dir    string
	ID     string
	Report *bench.Report
}

// Input is everything a report is drawn from.
type Input struct {
	Scenarios []*Scenario
	Benches   []*Bench
	// Errors are the runs `lossbench matrix` could not make (ErrorsFile).
	Errors []RunError
}

// ErrNothing is returned by Load when the folders hold neither a
// result.json nor a bench.json.
var ErrNothing = errors.New("report: no result.json or bench.json found")

// Load reads every result.json and bench.json under dirs (see maxDepth).
// Scenarios are sorted by strategy, failure, run; a file that does not
// parse is an error naming it.
func Load(dirs ...string) (*Input, error) {
	in := &Input{}
	seen := map[string]bool{}
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("report: %s is not a folder", dir)
		}
		root := filepath.Clean(dir)
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				rel, _ := filepath.Rel(root, path)
				if rel != "." && (strings.Count(rel, string(filepath.Separator)) >= maxDepth || d.Name() == "logs" || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			abs, _ := filepath.Abs(path)
			if seen[abs] {
				return nil
			}
			switch d.Name() {
			case result.FileName:
				seen[abs] = true
				r, err := result.ReadFile(path)
				if err != nil {
					return err
				}
				s := &Scenario{Dir: filepath.Dir(path), Result: r}
				for _, n := range r.Notes {
					if rest, ok := strings.CutPrefix(n, "skipped: "); ok {
						s.Skipped = rest
					}
				}
				in.Scenarios = append(in.Scenarios, s)
			case ErrorsFile:
				seen[abs] = true
				errs, err := ReadErrors(path)
				if err != nil {
					return err
				}
				in.Errors = append(in.Errors, errs...)
			case BenchFile:
				seen[abs] = true
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				var rep bench.Report
				if err := json.Unmarshal(b, &rep); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				in.Benches = append(in.Benches, &Bench{Dir: filepath.Dir(path), ID: filepath.Base(filepath.Dir(path)), Report: &rep})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
	}
	if len(in.Scenarios) == 0 && len(in.Benches) == 0 {
		return nil, fmt.Errorf("%w under %s", ErrNothing, strings.Join(dirs, ", "))
	}
	sort.SliceStable(in.Scenarios, func(i, j int) bool {
		a, b := in.Scenarios[i], in.Scenarios[j]
		if a.Result.Strategy != b.Result.Strategy {
			return a.Result.Strategy < b.Result.Strategy
		}
		if a.Result.Failure != b.Result.Failure {
			return a.Result.Failure < b.Result.Failure
		}
		return a.Run() < b.Run()
	})
	sort.SliceStable(in.Benches, func(i, j int) bool { return in.Benches[i].ID < in.Benches[j].ID })
	return in, nil
}
