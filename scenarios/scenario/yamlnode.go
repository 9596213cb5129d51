package scenario

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// fields is a mapping's keys and values, looked up by key.
type fields struct {
	n    *yaml.Node
	what string
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
}

func (f *fields) get(key string) *yaml.Node {
	if f == nil {
		return nil
	}
	return f.vals[key]
}

func (f *fields) has(key string) bool { return f.get(key) != nil }

// mapping checks that n is a mapping whose keys are strings from allowed,
// each at most once; it reports every other key. It returns nil if n is not
// a mapping.
func (d *decoder) mapping(n *yaml.Node, what string, allowed ...string) *fields {
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), "%s: expected a mapping with keys %s, got %s", what, strings.Join(allowed, ", "), describe(n))
		return nil
	}
	f := &fields{n: n, what: what, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(pos(k), "%s: expected a key, got %s", what, describe(k))
			continue
		}
		if prev, dup := f.keys[k.Value]; dup {
			d.errorf(pos(k), "%s: duplicate key %q (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		if !contains(allowed, k.Value) {
			d.errorf(pos(k), "%s: unknown key %q; expected one of: %s", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		f.keys[k.Value] = k
		f.vals[k.Value] = v
	}
	return f
}

// require reports each key that f lacks.
func (d *decoder) require(f *fields, keys ...string) bool {
	if f == nil {
		return false
	}
	ok := true
	for _, k := range keys {
		if !f.has(k) {
			d.errorf(pos(f.n), "%s: missing key %q", f.what, k)
			ok = false
		}
	}
	return ok
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// scalar checks n is a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, what, expected string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(pos(n), "%s: expected %s, got %s", what, expected, describe(n))
		return false
	}
	return true
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if n == nil || !d.scalar(n, what, "a string") {
		return ""
	}
	return n.Value
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// NameRule says what a name must be, for messages outside this package.
const NameRule = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 63 characters"

// ValidName reports whether s is a good name of a scenario, site, node,
// disk or database; a run id (`lossbench run --run-id`) follows the same
// rule, since both name folders and must stay inside the results folder.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// name reads an identifier: letters, digits, '.', '_', '-', starting with
// a letter or digit (names become folder names and fault labels).
func (d *decoder) name(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag != "!!null" && s == "" {
		d.errorf(pos(n), "%s: empty name: expected letters, digits, '.', '_' or '-', starting with a letter or digit", what)
		return ""
	}
	if s != "" && !nameRE.MatchString(s) {
		d.errorf(pos(n), "%s: bad name %q: expected %s", what, s, NameRule)
		return ""
	}
	return s
}

func (d *decoder) int(n *yaml.Node, what string) int64 {
	if n == nil || !d.scalar(n, what, "a whole number") {
		return 0
	}
	if n.Tag != "!!int" {
		d.errorf(pos(n), "%s: expected a whole number, got %s", what, describe(n))
		return 0
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		d.errorf(pos(n), "%s: expected a whole number, got %s", what, describe(n))
		return 0
	}
	return v
}

// atMost reports v above limit (see the Max constants).
func (d *decoder) atMost(n *yaml.Node, what string, v, limit float64) {
	if v > limit {
		d.errorf(pos(n), "%s: %s is more than the limit of %s", what,
			strconv.FormatFloat(v, 'f', -1, 64), strconv.FormatFloat(limit, 'f', -1, 64))
	}
}

// count reads a whole number that must not be negative.
func (d *decoder) count(n *yaml.Node, what string) int64 {
	v := d.int(n, what)
	if v < 0 {
		d.errorf(pos(n), "%s: must not be negative, got %d", what, v)
		return 0
	}
	return v
}

func (d *decoder) float(n *yaml.Node, what string) float64 {
	if n == nil || !d.scalar(n, what, "a number") {
		return 0
	}
	if n.Tag != "!!int" && n.Tag != "!!float" {
		d.errorf(pos(n), "%s: expected a number, got %s", what, describe(n))
		return 0
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || v != v || v > 1e300 || v < -1e300 {
		d.errorf(pos(n), "%s: expected a number, got %s", what, describe(n))
		return 0
	}
	return v
}

func (d *decoder) bool(n *yaml.Node, what string) bool {
	if n == nil || !d.scalar(n, what, "true or false") {
		return false
	}
	if n.Tag != "!!bool" {
		d.errorf(pos(n), "%s: expected true or false, got %s", what, describe(n))
		return false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (d *decoder) duration(n *yaml.Node, what string) Duration {
	if n == nil || !d.scalar(n, what, "a duration like 10s") {
		return 0
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		d.errorf(pos(n), "%s: %v", what, err)
		return 0
	}
	return Duration(v)
}

func (d *decoder) size(n *yaml.Node, what string) Size {
	if n == nil || !d.scalar(n, what, "a size like 64MiB") {
		return 0
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		d.errorf(pos(n), "%s: %v", what, err)
		return 0
	}
	return v
}

// list checks n is a sequence and returns its items.
func (d *decoder) list(n *yaml.Node, what, expected string) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(pos(n), "%s: expected a list of %s, got %s", what, expected, describe(n))
		return nil
	}
	return n.Content
}

// pair reads a two-element list of names, like a link [a, b].
func (d *decoder) pair(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		got := describe(n)
		if n.Kind == yaml.SequenceNode {
			got = fmt.Sprintf("a list of %d", len(n.Content))
		}
		d.errorf(pos(n), "%s: expected a pair of site names like [a, b], got %s", what, got)
		return nil
	}
	a, b := d.name(n.Content[0], what), d.name(n.Content[1], what)
	if a == "" || b == "" {
		return nil
	}
	return []string{a, b}
}

// oneOf checks that exactly one of keys is present in f (or at most one,
// if optional) and returns it.
func (d *decoder) oneOf(f *fields, optional bool, keys ...string) string {
	if f == nil {
		return ""
	}
	var found []string
	for _, k := range keys {
		if f.has(k) {
			found = append(found, k)
		}
	}
	switch {
	case len(found) == 1:
		return found[0]
	case len(found) == 0 && !optional:
		d.errorf(pos(f.n), "%s: missing key: expected one of %s", f.what, strings.Join(keys, ", "))
	case len(found) > 1:
		d.errorf(pos(f.keys[found[1]]), "%s: %q and %q exclude each other; write one", f.what, found[0], found[1])
	}
	return ""
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// posOf is n's position, or def if n is nil.
func posOf(n *yaml.Node, def Pos) Pos {
	if n == nil {
		return def
	}
	return pos(n)
}

// JunkPos is where the first character that YAML refuses wherever it
// stands lies: a control character, a byte that is not UTF-8, or a
// non-character (U+FFFE, U+FFFF). yaml.v3 reports these without a line;
// ok is false when data has none.
func JunkPos(data []byte) (p Pos, ok bool) {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r < 0xa0 && r != 0x85,
			r == 0xfffe || r == 0xffff:
			return Pos{Line: line, Col: col}, true
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		i += size
	}
	return Pos{}, false
}
