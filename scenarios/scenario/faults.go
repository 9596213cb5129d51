package scenario

import (
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// faultKeys are the keys any fault may have; the rest depend on the kind
// (faultSpecs).
var faultKeys = []string{"kind", "at", "between", "target", "chance"}

// faultSpec says what a kind of fault targets and which keys it takes.
type faultSpec struct {
	targets  []string // the keys that name the target: node, disk, site, sites, link
	keys     []string // extra keys it allows
	required []string // extra keys it needs
}

var faultSpecs = map[FaultKind]faultSpec{
	Kill:        {targets: []string{"node"}, keys: []string{"restart_after"}},
	Pause:       {targets: []string{"node"}, keys: []string{"duration"}, required: []string{"duration"}},
	Stop:        {targets: []string{"node"}, keys: []string{"restart_after"}},
	MachineLost: {targets: []string{"node"}, keys: []string{"restart_after", "move_disks_to"}},
	DiskLost:    {targets: []string{"disk"}, keys: []string{"restart_after"}},
	DiskFull:    {targets: []string{"disk"}, keys: []string{"duration"}},
	SiteLost:    {targets: []string{"site"}, keys: []string{"restart_after"}},
	Partition:   {targets: []string{"sites", "node"}, keys: []string{"duration"}},
	Latency:     {targets: []string{"link"}, keys: []string{"delay", "jitter", "duration"}, required: []string{"delay"}},
	Bandwidth:   {targets: []string{"link"}, keys: []string{"kb_per_s", "duration"}, required: []string{"kb_per_s"}},
	Reset:       {targets: []string{"link"}, keys: []string{"duration"}},
	Blackhole:   {targets: []string{"link"}, keys: []string{"duration"}},
	PowerCut:    {targets: []string{"node"}, keys: []string{"restart_after", "torn"}},
	DBLost:      {targets: []string{"database"}, keys: []string{"restart_after"}},
	DBDataLost:  {targets: []string{"database"}, keys: []string{"restart_after"}},
	DiskError:   {targets: []string{"disk"}, keys: []string{"errno", "ops", "duration", "node"}, required: []string{"errno"}},
	DiskStall:   {targets: []string{"disk"}, keys: []string{"duration", "node"}, required: []string{"duration"}},
	DiskCorrupt: {targets: []string{"disk"}, keys: []string{"file", "block"}, required: []string{"file"}},
}

// NeedsFUSE reports whether the fault needs its disk on the
// fault-injecting FUSE filesystem.
func (f Fault) NeedsFUSE() bool { return f.Torn || contains(kindNames(FUSEKinds), string(f.Kind)) }

func kindNames(ks []FaultKind) []string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return s
}

func faultKindNames() string { return strings.Join(kindNames(FaultKinds), ", ") }

func (d *decoder) fault(n *yaml.Node) (Fault, bool) {
	flt := Fault{Pos: pos(n), Chance: 1}
	all := append([]string{}, faultKeys...)
	all = append(all, "node", "disk", "site", "database", "sites", "link", "duration", "restart_after", "delay", "jitter", "kb_per_s",
		"errno", "ops", "file", "block", "torn", "move_disks_to")
	nerr := len(d.errs)
	f := d.mapping(n, "fault", all...)
	if f == nil {
		return flt, false
	}
	if !d.require(f, "kind") {
		return flt, false
	}
	flt.Kind = FaultKind(d.str(f.get("kind"), "fault kind"))
	spec, ok := faultSpecs[flt.Kind]
	if !ok {
		if flt.Kind != "" {
			d.errorf(pos(f.get("kind")), "fault kind: unknown %q; expected one of: %s", flt.Kind, faultKindNames())
		}
		return flt, false
	}
	what := "fault " + string(flt.Kind)
	f.what = what
	allowed := append(append(append([]string{}, faultKeys...), spec.targets...), spec.keys...)
	for _, k := range all {
		if f.has(k) && !contains(allowed, k) {
			d.errorf(pos(f.keys[k]), "%s: key %q does not apply; expected: %s", what, k, strings.Join(allowed, ", "))
		}
	}
	for _, k := range spec.required {
		d.require(f, k)
	}
	switch d.oneOf(f, false, "at", "between") {
	case "at":
		flt.At = d.duration(f.get("at"), what+" at")
	case "between":
		v := f.get("between")
		if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
			d.errorf(pos(v), "%s between: expected a range like [2s, 5s], got %s", what, describe(v))
			break
		}
		lo, hi := d.duration(v.Content[0], what+" between"), d.duration(v.Content[1], what+" between")
		if lo > hi {
			d.errorf(pos(v), "%s between: the range [%s, %s] is empty: expected min <= max", what, lo, hi)
		}
		flt.Between = []Duration{lo, hi}
		flt.At = lo
	}
	targetKeys := append([]string{"target"}, spec.targets...)
	switch key := d.oneOf(f, false, targetKeys...); key {
	case "target":
		flt.OneOf = d.targetChoice(f.get("target"), what, spec.targets)
	case "":
	default:
		flt.Target = d.target(f.get(key), what+" "+key, key)
	}
	if v := f.get("duration"); v != nil {
		flt.Duration = d.duration(v, what+" duration")
		if (flt.Kind == Pause || flt.Kind == DiskStall) && flt.Duration == 0 && len(d.errs) == nerr {
			d.errorf(pos(v), "%s duration: must be more than 0", what)
		}
	}
	if v := f.get("restart_after"); v != nil {
		flt.Restart = true
		flt.RestartAfter = d.duration(v, what+" restart_after")
	}
	if v := f.get("delay"); v != nil {
		flt.Delay = d.duration(v, what+" delay")
		if flt.Delay == 0 && len(d.errs) == nerr {
			d.errorf(pos(v), "%s delay: must be more than 0", what)
		}
	}
	if v := f.get("jitter"); v != nil {
		flt.Jitter = d.duration(v, what+" jitter")
	}
	if v := f.get("kb_per_s"); v != nil {
		flt.KBPerSec = d.count(v, what+" kb_per_s")
		if flt.KBPerSec == 0 && len(d.errs) == nerr {
			d.errorf(pos(v), "%s kb_per_s: must be at least 1", what)
		}
	}
	d.diskFault(f, &flt, what)
	if v := f.get("node"); v != nil && (flt.Kind == DiskError || flt.Kind == DiskStall) {
		flt.Node, flt.nodePos = d.name(v, what+" node"), pos(v)
	}
	if v := f.get("move_disks_to"); v != nil {
		flt.MoveDisksTo, flt.movePos = d.name(v, what+" move_disks_to"), pos(v)
	}
	if v := f.get("chance"); v != nil {
		flt.Chance = d.float(v, what+" chance")
		if flt.Chance <= 0 || flt.Chance > 1 {
			d.errorf(pos(v), "%s chance: expected a probability in (0, 1], got %s", what, v.Value)
		}
	}
	return flt, len(d.errs) == nerr
}

// target reads a target written under key (node, disk, site, database,
// sites, link).
func (d *decoder) target(n *yaml.Node, what, key string) Target {
	switch key {
	case "node":
		return Target{Node: d.name(n, what), pos: pos(n)}
	case "disk":
		return Target{Disk: d.name(n, what), pos: pos(n)}
	case "site":
		return Target{Site: d.name(n, what), pos: pos(n)}
	case "database":
		return Target{Database: d.name(n, what), pos: pos(n)}
	default: // sites, link
		return Target{Sites: d.pair(n, what), pos: pos(n)}
	}
}

// targetChoice reads target: {one_of: [...]}. Items are names, or pairs
// for sites and links; for a partition a name is a node to isolate.
func (d *decoder) targetChoice(n *yaml.Node, what string, keys []string) []Target {
	f := d.mapping(n, what+" target", "one_of")
	if f == nil || !d.require(f, "one_of") {
		return nil
	}
	items := d.list(f.get("one_of"), what+" target one_of", "targets")
	if f.get("one_of").Kind == yaml.SequenceNode && len(items) == 0 {
		d.errorf(pos(f.get("one_of")), "%s target one_of: expected at least one target", what)
	}
	var out []Target
	for _, it := range items {
		key := keys[0]
		if it.Kind == yaml.ScalarNode && contains(keys, "node") {
			key = "node"
		}
		out = append(out, d.target(it, what+" target one_of", key))
	}
	return out
}

func (d *decoder) expectations(n *yaml.Node) ([]Expectation, []ExitExpectation) {
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), "expectations: expected a mapping of metric: condition, like lost: 0, got %s", describe(n))
		return nil, nil
	}
	var out []Expectation
	var exits []ExitExpectation
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		m := d.str(k, "expectations")
		if m == "" {
			continue
		}
		if line, dup := seen[m]; dup {
			d.errorf(pos(k), "expectations: duplicate metric %q (first at line %d)", m, line)
			continue
		}
		seen[m] = k.Line
		if m == ExitKey {
			exits = d.exitExpectations(v)
			continue
		}
		if !contains(Metrics, m) {
			d.errorf(pos(k), "expectations: unknown metric %q; expected one of: %s", m, strings.Join(Metrics, ", "))
			continue
		}
		if !d.scalar(v, "expectations "+m, "a condition like 0, \">0\" or \"<= 50\"") {
			continue
		}
		c, err := ParseCondition(v.Value)
		if err != nil {
			d.errorf(pos(v), "expectations %s: %v", m, err)
			continue
		}
		out = append(out, Expectation{Metric: m, Condition: c, Pos: pos(k)})
	}
	return out, exits
}

// exitExpectations reads expectations' exit: {node: status | none}.
func (d *decoder) exitExpectations(n *yaml.Node) []ExitExpectation {
	const what = "expectations " + ExitKey
	if n.Kind != yaml.MappingNode {
		d.errorf(pos(n), "%s: expected a mapping of node: exit status (0 to 255) or none, like {a1: 1}, got %s", what, describe(n))
		return nil
	}
	var out []ExitExpectation
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		node := d.name(k, what)
		if node == "" {
			continue
		}
		if line, dup := seen[node]; dup {
			d.errorf(pos(k), "%s: node %q twice (first at line %d)", what, node, line)
			continue
		}
		seen[node] = k.Line
		if !d.scalar(v, what+" "+node, "an exit status (0 to 255) or none") {
			continue
		}
		e := ExitExpectation{Node: node, Pos: pos(k)}
		if v.Value == ExitNone {
			e.Never = true
		} else if st, err := strconv.Atoi(v.Value); err == nil && st >= 0 && st <= 255 {
			e.Status = st
		} else {
			d.errorf(pos(v), "%s %s: expected an exit status (0 to 255) or none, got %q", what, node, v.Value)
			continue
		}
		out = append(out, e)
	}
	return out
}

// diskFault reads the keys of the disk faults: errno, ops, file, block,
// torn.
func (d *decoder) diskFault(f *fields, flt *Fault, what string) {
	if v := f.get("errno"); v != nil {
		flt.Errno = d.str(v, what+" errno")
		if flt.Errno != "" && !contains(Errnos, flt.Errno) {
			d.errorf(pos(v), "%s errno: unknown %q; expected one of: %s", what, flt.Errno, strings.Join(Errnos, ", "))
		}
	}
	if v := f.get("ops"); v != nil {
		items := d.list(v, what+" ops", "operations like [write, fsync]")
		if v.Kind == yaml.SequenceNode && len(items) == 0 {
			d.errorf(pos(v), "%s ops: expected at least one of: %s", what, strings.Join(DiskOps, ", "))
		}
		for _, it := range items {
			op := d.str(it, what+" ops")
			switch {
			case op == "":
			case !contains(DiskOps, op):
				d.errorf(pos(it), "%s ops: unknown %q; expected: %s", what, op, strings.Join(DiskOps, ", "))
			case contains(flt.Ops, op):
				d.errorf(pos(it), "%s ops: %q twice", what, op)
			default:
				flt.Ops = append(flt.Ops, op)
			}
		}
	} else if flt.Kind == DiskError {
		flt.Ops = append([]string{}, DiskOps...)
	}
	if v := f.get("file"); v != nil {
		flt.File = d.str(v, what+" file")
		if _, err := filepath.Match(flt.File, ""); err != nil || (flt.File == "" && v.Kind == yaml.ScalarNode) {
			d.errorf(pos(v), "%s file: expected a glob like \"journal/*.log\", got %q", what, flt.File)
		}
	}
	if v := f.get("block"); v != nil {
		b := d.count(v, what+" block")
		flt.Block = &b
	}
	if v := f.get("torn"); v != nil {
		flt.Torn = d.bool(v, what+" torn")
	}
}
