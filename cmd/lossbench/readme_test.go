package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lossbench/lossbench/chaos/runner"
)

// readmes are the user docs whose flags TestReadmeFlags checks.
var readmes = []string{"../../README.md", "../../scenarios/README.md"}

// foreignFlags are --words the docs name that belong to no lossbench or
// refbroker flag set, with whose they are.
var foreignFlags = map[string]string{
	"help":     "every command's",
	"rabbitmq": "chaos/bench/install-peers.sh's",
}

// helpFlag matches a flag line of a Go flag set's usage, "  -name ...".
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// helpFlags parses a --help output into flag name -> default ("" when
// the help states none).
func helpFlags(t *testing.T, what, help string) map[string]string {
	t.Helper()
	flags := map[string]string{}
	locs := helpFlag.FindAllStringSubmatchIndex(help, -1)
	for i, l := range locs {
		end := len(help)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		def := ""
		if m := regexp.MustCompile(`\(default ([^)]*)\)\s*$`).FindStringSubmatch(help[l[0]:end]); m != nil {
			def = m[1]
		}
		flags[help[l[2]:l[3]]] = def
	}
	if len(flags) == 0 && what != "lossbench images" {
		t.Fatalf("%s --help lists no flags:\n%s", what, help)
	}
	return flags
}

// flagSets returns the flags of every lossbench command and of refbroker
// and refbroker witness, from their --help, keyed by command line.
func flagSets(t *testing.T) map[string]map[string]string {
	t.Helper()
	sets := map[string]map[string]string{}
	for name := range commands {
		code, out, errs := runMain(name, "--help")
		if code != exitOK {
			t.Fatalf("lossbench %s --help: exit %d: %s", name, code, errs)
		}
		sets["lossbench "+name] = helpFlags(t, "lossbench "+name, out+errs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := runner.FindBroker(ctx, "", t.TempDir())
	if err != nil {
		t.Fatalf("refbroker does not build: %v", err)
	}
	for _, cmd := range []string{"refbroker", "refbroker witness"} {
		args := append(strings.Fields(cmd)[1:], "--help")
		out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput() // --help may exit 0 or 2
		sets[cmd] = helpFlags(t, cmd, string(out))
	}
	return sets
}

// docLines returns a doc's lines, each with those continued by a
// trailing backslash joined to it, and its line number.
func docLines(text string) (lines []string, numbers []int) {
	cur, start := "", 0
	for i, l := range strings.Split(text, "\n") {
		if cur == "" {
			start = i + 1
		}
		if strings.HasSuffix(l, `\`) {
			cur += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		lines, numbers = append(lines, cur+l), append(numbers, start)
		cur = ""
	}
	return lines, numbers
}

var (
	// anyFlag is a --flag anywhere in prose or code; --x={...} is an
	// argument of another broker's command line in a scenario.
	anyFlag = regexp.MustCompile("(?:^|[\\s`(\\[,\"])--([a-z][a-z0-9-]*)")
	// invocation is a refbroker or lossbench command line up to a shell
	// separator, a comment or the end of its code span.
	invocation = regexp.MustCompile("\\b(refbroker(?: witness)?|lossbench [a-z]+)\\b([^`|;&#]*)")
	// tableDefault is a refbroker flag table row for one flag with a
	// default, "| `--name` | ... (default VALUE" or "(default VALUE;".
	// targetsList is the list of a --targets, across a line break.
	targetsList  = regexp.MustCompile(`--targets\s+([a-z0-9][a-z0-9,-]*[a-z0-9])`)
	tableDefault = regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\|.*?\\(default ([^;,)]+)")
)

// TestReadmeFlags checks the docs against the real flag sets: every
// --flag they name is some command's, every flag on a refbroker or
// lossbench command line is that command's, and every default the
// README's refbroker flag table states for a single flag is the one
// refbroker --help states; every --targets list names bench targets.
func TestReadmeFlags(t *testing.T) {
	sets := flagSets(t)
	all := map[string]bool{}
	for _, s := range sets {
		for f := range s {
			all[f] = true
		}
	}
	for _, path := range readmes {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range targetsList.FindAllStringSubmatch(string(b), -1) {
			if _, err := pickTargets(m[1]); err != nil {
				t.Errorf("%s: --targets %s: %v", path[len("../../"):], m[1], err)
			}
		}
		lines, numbers := docLines(string(b))
		for i, l := range lines {
			where := path[len("../../"):] + ":" + strconv.Itoa(numbers[i])
			for _, m := range anyFlag.FindAllStringSubmatchIndex(l, -1) {
				f := l[m[2]:m[3]]
				if strings.HasPrefix(l[m[3]:], "={") {
					continue
				}
				if !all[f] && foreignFlags[f] == "" {
					t.Errorf("%s: --%s is no flag of refbroker or lossbench", where, f)
				}
			}
			for _, m := range invocation.FindAllStringSubmatch(l, -1) {
				set, ok := sets[m[1]]
				if !ok {
					continue // "lossbench measures ...": prose, not a subcommand
				}
				for _, f := range anyFlag.FindAllStringSubmatch(m[2], -1) {
					if _, ok := set[f[1]]; !ok && foreignFlags[f[1]] == "" {
						t.Errorf("%s: %s has no --%s: %s", where, m[1], f[1], strings.TrimSpace(m[0]))
					}
				}
			}
			if m := tableDefault.FindStringSubmatch(l); m != nil {
				help, ok := sets["refbroker"][m[1]]
				if !ok {
					continue // reported above
				}
				if !sameDefault(m[2], help) {
					t.Errorf("%s: README says --%s defaults to %q, refbroker --help says %q", where, m[1], m[2], help)
				}
			}
		}
	}
	names := make([]string, 0, len(sets))
	for n := range sets {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("flag sets checked: %s", strings.Join(names, ", "))
}

// sameDefault reports whether a default the README states is the one
// --help states: equal as durations ("60s", "1m0s"), as numbers written
// with thousands separators ("10,000"), or as text.
func sameDefault(doc, help string) bool {
	doc = strings.TrimSpace(doc)
	if doc == help || strings.ReplaceAll(doc, ",", "") == help {
		return true
	}
	d, err1 := time.ParseDuration(doc)
	h, err2 := time.ParseDuration(help)
	return err1 == nil && err2 == nil && d == h
}

// scenarioPath is a scenario file or glob the README names.
var scenarioPath = regexp.MustCompile(`scenarios/(?:suite|matrix|peers)/[a-z0-9*-]+\.yaml`)

// TestReadmeScenarios checks that every scenario file or glob README.md
// names exists, and that README.md names every scenario of
// scenarios/suite, matrix and peers, by name or by a glob such as
// scenarios/peers/nats-*.yaml (not a whole folder's *.yaml).
func TestReadmeScenarios(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// A name may be broken across lines after a hyphen.
	text := strings.ReplaceAll(strings.ReplaceAll(string(b), "-\n", "-"), "\n", " ")
	mentioned := map[string]bool{}
	for _, p := range scenarioPath.FindAllString(text, -1) {
		files, err := filepath.Glob("../../" + p)
		if err != nil || len(files) == 0 {
			t.Errorf("README.md names %s, which is no scenario file", p)
		}
		if strings.HasSuffix(p, "/*.yaml") {
			continue // a whole folder lists no scenario
		}
		for _, f := range files {
			mentioned[f] = true
		}
	}
	files, err := filepath.Glob("../../scenarios/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "baseline.yaml" || filepath.Base(filepath.Dir(f)) == "scenario" {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !mentioned[f] && !regexp.MustCompile(`(^|[^a-z0-9-])`+regexp.QuoteMeta(name)+`($|[^a-z0-9-])`).MatchString(text) {
			t.Errorf("README.md does not mention scenario %s", f[len("../../"):])
		}
	}
	if n == 0 {
		t.Fatal("no scenario files found")
	}
}

// tablePath is a scenario file scenarios/README.md names, relative to
// scenarios/.
var tablePath = regexp.MustCompile("`((?:suite|matrix|peers)/[a-z0-9-]+\\.yaml)`")

// TestScenariosReadmeTables checks that scenarios/README.md's tables
// name every scenario of suite/, matrix/ and peers/ as DIR/FILE, and
// only files that exist.
func TestScenariosReadmeTables(t *testing.T) {
	b, err := os.ReadFile("../../scenarios/README.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range tablePath.FindAllStringSubmatch(string(b), -1) {
		named[m[1]] = true
		if _, err := os.Stat("../../scenarios/" + m[1]); err != nil {
			t.Errorf("scenarios/README.md names %s: %v", m[1], err)
		}
	}
	files, err := filepath.Glob("../../scenarios/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rel := f[len("../../scenarios/"):]
		if strings.HasPrefix(rel, "scenario/") {
			continue
		}
		if !named[rel] {
			t.Errorf("scenarios/README.md lists no %s", rel)
		}
	}
}
