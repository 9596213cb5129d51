package gate

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
)

// JUnit XML as Jenkins, GitLab and GitHub test reporters read it: one
// testsuite per matrix cell (and one for throughput), one testcase per
// check.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// JUnit renders the verdict as JUnit XML.
func (v *Verdict) JUnit() ([]byte, error) {
	all := junitSuites{Name: "lossbench gate"}
	names, by := v.groups()
	for _, g := range names {
		s := junitSuite{Name: g}
		for _, c := range by[g] {
			jc := junitCase{Name: c.Name, Classname: "lossbench.gate." + strings.NewReplacer(" × ", ".", " [", ".", "]", "").Replace(g),
				SystemOut: fmt.Sprintf("budget %s, got %s", c.Budget, c.Got)}
			switch c.Status {
			case Fail:
				jc.Failure = &junitMessage{Message: c.Message, Text: jc.SystemOut}
				s.Failures++
			case Skip:
				jc.Skipped = &junitMessage{Message: c.Message}
				s.Skipped++
			}
			s.Tests++
			s.Cases = append(s.Cases, jc)
		}
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	b, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("gate: junit: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// WriteJUnit writes the verdict's JUnit XML to path.
func (v *Verdict) WriteJUnit(path string) error {
	b, err := v.JUnit()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	return nil
}
