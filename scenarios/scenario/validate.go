package scenario

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// entity is a named thing in the topology, for cross-reference checks.
type entity struct {
	kind string // site, node, disk, database
	pos  Pos
}

// validate checks the references between parts of s: every name used is
// declared, names are unique, times fall inside the workload. Empty names
// were already reported by the decoder and are skipped here.
func (d *decoder) validate(s *Scenario) {
	if s == nil {
		return
	}
	t := &s.Topology
	names := map[string]entity{}
	declare := func(kind, name string, p Pos) {
		if name == "" {
			return
		}
		if prev, dup := names[name]; dup {
			d.errorf(p, "duplicate name %q: already used by the %s at line %d", name, prev.kind, prev.pos.Line)
			return
		}
		names[name] = entity{kind, p}
	}
	for _, x := range t.Sites {
		declare("site", x.Name, x.Pos)
	}
	for _, x := range t.Nodes {
		declare("node", x.Name, x.Pos)
	}
	for _, x := range t.Disks {
		declare("disk", x.Name, x.Pos)
	}
	replicaOf := map[string]string{} // replica name -> its database
	for _, x := range t.Databases {
		declare("database", x.Name, x.Pos)
		for _, r := range x.Replicas {
			declare("database", r.Name, r.Pos)
			if r.Name != "" {
				replicaOf[r.Name] = x.Name
			}
		}
	}
	is := func(kind, name string) bool { e, ok := names[name]; return ok && e.kind == kind }
	ref := func(p Pos, what, kind, name string) bool {
		if name == "" {
			return false
		}
		if e, ok := names[name]; ok && e.kind != kind {
			d.errorf(p, "%s: %q is a %s (line %d), expected a %s", what, name, e.kind, e.pos.Line, kind)
			return false
		} else if !ok {
			d.errorf(p, "%s: unknown %s %q; declared %ss: %s", what, kind, name, kind, d.declared(names, kind))
			return false
		}
		return true
	}

	for i, l := range t.Links {
		ok := ref(l.aPos, "link", "site", l.A)
		ok = ref(l.bPos, "link", "site", l.B) && ok
		if ok && l.A == l.B {
			d.errorf(l.Pos, "link [%s, %s]: expected two different sites", l.A, l.B)
		}
		for _, m := range t.Links[:i] {
			if m.Joins(l.A, l.B) {
				d.errorf(l.Pos, "link [%s, %s]: duplicate of the link at line %d", l.A, l.B, m.Pos.Line)
				break
			}
		}
	}
	hasLink := func(a, b string) bool {
		for _, l := range t.Links {
			if l.Joins(a, b) {
				return true
			}
		}
		return false
	}
	siteOf := map[string]string{}
	for _, n := range t.Nodes {
		ref(n.sitePos, fmt.Sprintf("node %q site", n.Name), "site", n.Site)
		siteOf[n.Name] = n.Site
	}
	for _, k := range t.Disks {
		if len(k.Nodes) == 0 {
			ref(k.nodePos, fmt.Sprintf("disk %q node", k.Name), "node", k.Node)
		}
		seen := map[string]bool{}
		for i, n := range k.Nodes {
			if ref(k.nodesPos[i], fmt.Sprintf("disk %q nodes", k.Name), "node", n) && seen[n] {
				d.errorf(k.nodesPos[i], "disk %q nodes: %q named twice", k.Name, n)
			}
			seen[n] = true
		}
		if k.MirrorOf != "" && ref(k.mirrorPos, fmt.Sprintf("disk %q mirror_of", k.Name), "disk", k.MirrorOf) && k.MirrorOf == k.Name {
			d.errorf(k.mirrorPos, "disk %q mirror_of: a disk cannot mirror itself", k.Name)
		}
	}
	for _, db := range t.Databases {
		ref(db.sitePos, fmt.Sprintf("database %q site", db.Name), "site", db.Site)
		for i, r := range db.Replicas {
			what := fmt.Sprintf("database %q replica %q site", db.Name, r.Name)
			if !ref(r.sitePos, what, "site", r.Site) {
				continue
			}
			// Streaming replication runs over the link between the sites,
			// both ways (an old primary comes back as a standby).
			if db.Kind != MariaDB && db.Site != "" && r.Site != db.Site && !hasLink(db.Site, r.Site) {
				d.errorf(r.sitePos, "%s: the primary in site %q cannot stream to site %q: add the link [%s, %s]",
					what, db.Site, r.Site, db.Site, r.Site)
			}
			// Every Galera node talks to every other one.
			if db.Kind == MariaDB {
				for _, o := range db.Servers()[:i+1] {
					if o.Site != "" && o.Site != r.Site && !hasLink(o.Site, r.Site) {
						d.errorf(r.sitePos, "%s: Galera node %q in site %q replicates with %q in site %q: add the link [%s, %s]",
							what, r.Name, r.Site, o.Name, o.Site, o.Site, r.Site)
					}
				}
			}
		}
	}
	for _, n := range t.Nodes {
		replica := false
		for _, name := range n.Broker.DatabaseNames() {
			if of, ok := replicaOf[name]; ok {
				d.errorf(n.Broker.dbPos, "node %q broker database: %q is a replica of database %q; name the database, %s (the broker is given every server and finds the primary)",
					n.Name, name, of, of)
				replica = true
			}
		}
		if !replica {
			d.validateNodeDatabase(t, n, ref, hasLink)
		}
		d.validateNodeRefs(t, n, hasLink)
	}

	w := &s.Workload
	if w.Site != "" {
		ref(w.sitePos, "workload site", "site", w.Site)
	}
	if len(w.Connect) == 0 {
		for _, n := range t.Nodes {
			w.Connect = append(w.Connect, n.Name)
		}
	}
	seen := map[string]bool{}
	for i, c := range w.Connect {
		p := w.Pos
		if i < len(w.connectPos) {
			p = w.connectPos[i]
		}
		if !ref(p, "workload connect", "node", c) {
			continue
		}
		if seen[c] {
			d.errorf(p, "workload connect: node %q listed twice", c)
		}
		seen[c] = true
		if ns := siteOf[c]; w.Site != "" && is("site", w.Site) && ns != "" && ns != w.Site && !hasLink(w.Site, ns) {
			d.errorf(p, "workload: clients in site %q cannot reach node %q in site %q: add the link [%s, %s]", w.Site, c, ns, w.Site, ns)
		}
	}
	d.validateDestinations(s)
	d.validateProtocol(s)
	for i, r := range w.Recovery.Repair {
		if r == "" {
			continue
		}
		if !is("node", r) && !is("database", r) {
			d.errorf(w.Recovery.repairPos[i], "recovery repair: unknown node or database %q", r)
		}
	}

	for i := range s.Faults {
		d.validateFault(s, &s.Faults[i], ref, hasLink)
	}
	d.validateSpares(s, ref)
	for i, n := range w.Recovery.restartNodes {
		ref(w.Recovery.restartPos[i], "recovery restart_args", "node", n)
	}
	for _, f := range s.Faults {
		if f.Node == "" || !ref(f.nodePos, "fault "+string(f.Kind)+" node", "node", f.Node) {
			continue
		}
		for _, k := range t.Disks {
			if k.Name != f.Target.Disk {
				continue
			}
			if !k.Shared() {
				d.errorf(f.nodePos, "fault %s node: disk %q is not shared: node names one node's path to a shared disk (nodes: [...])", f.Kind, k.Name)
			} else if !contains(k.Nodes, f.Node) {
				d.errorf(f.nodePos, "fault %s node: node %q does not reach disk %q (nodes: %s)", f.Kind, f.Node, k.Name, strings.Join(k.Nodes, ", "))
			}
		}
		if len(f.OneOf) > 0 {
			d.errorf(f.nodePos, "fault %s node: applies to a fixed disk, not target one_of", f.Kind)
		}
	}
	for _, e := range s.Exits {
		ref(e.Pos, "expectations "+ExitKey, "node", e.Node)
	}
}

// declared lists the declared names of one kind, for "unknown" messages.
func (d *decoder) declared(names map[string]entity, kind string) string {
	var out []string
	for n, e := range names {
		if e.kind == kind {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func (d *decoder) validateFault(s *Scenario, f *Fault, ref func(Pos, string, string, string) bool,
	hasLink func(a, b string) bool) {
	what := "fault " + string(f.Kind)
	end := time.Duration(s.Workload.Duration)
	if end > 0 {
		last := f.At
		if len(f.Between) == 2 {
			last = f.Between[1]
		}
		if time.Duration(last) >= end {
			d.errorf(f.Pos, "%s: starts at %s, not before the workload ends (duration %s)", what, time.Duration(last), end)
		}
	}
	check := func(t Target) {
		p := f.Pos
		if t.pos.Line > 0 {
			p = t.pos
		}
		switch {
		case t.Node != "":
			ref(p, what+" node", "node", t.Node)
		case t.Disk != "":
			ref(p, what+" disk", "disk", t.Disk)
		case t.Site != "":
			ref(p, what+" site", "site", t.Site)
		case t.Database != "":
			ref(p, what+" database", "database", t.Database)
		case len(t.Sites) == 2:
			a, b := t.Sites[0], t.Sites[1]
			ok := ref(p, what, "site", a)
			ok = ref(p, what, "site", b) && ok
			if !ok {
				return
			}
			if a == b {
				d.errorf(p, "%s: [%s, %s]: expected two different sites", what, a, b)
			} else if !hasLink(a, b) {
				d.errorf(p, "%s: no link between sites %q and %q; declared links are under topology.links", what, a, b)
			}
		}
	}
	check(f.Target)
	for _, t := range f.OneOf {
		check(t)
	}
}

// DatabaseStores are the refbroker stores that keep messages in a database
// and so may name a broker database.
var DatabaseStores = []string{"jdbc", "journaled-jdbc"}

// validateNodeDatabase checks a node's broker database: it is declared, the
// store uses one, the node's site reaches the database's site, and {dsn}
// is used only with a database.
func (d *decoder) validateNodeDatabase(t *Topology, n Node, ref func(Pos, string, string, string) bool,
	hasLink func(a, b string) bool) {
	b := n.Broker
	what := fmt.Sprintf("node %q broker", n.Name)
	names := b.DatabaseNames()
	if len(names) == 0 {
		if b.Kind == Command && usesDSN(b) {
			d.errorf(b.Pos, "%s: placeholder {dsn} needs a database: add database: <name>", what)
		}
		return
	}
	if len(b.Databases) > 0 {
		switch {
		case len(b.Databases) < 2:
			d.errorf(b.dbPos, "%s databases: %d database; replicating needs two or more (use database: for one)", what, len(b.Databases))
		case b.Kind == Command:
			d.errorf(b.dbPos, "%s databases: a command broker gets one database as {dsn}; databases is for refbroker's replicated jdbc store", what)
		case b.Store != "jdbc":
			d.errorf(b.dbPos, "%s databases: replicating to several databases needs store jdbc, not %q", what, b.Store)
		}
		seen := map[string]bool{}
		for _, name := range b.Databases {
			if seen[name] {
				d.errorf(b.dbPos, "%s databases: %s named twice", what, name)
			}
			seen[name] = true
		}
	}
	for _, name := range names {
		if !ref(b.dbPos, what+" database", "database", name) {
			return
		}
	}
	if b.Kind == RefBroker && !contains(DatabaseStores, b.Store) {
		p := b.storePos
		if p.Line == 0 {
			p = b.dbPos
		}
		d.errorf(p, "%s: store %q keeps no database; database: %s needs store %s", what, b.Store, strings.Join(names, ", "), strings.Join(DatabaseStores, " or "))
	}
	for _, db := range t.Databases {
		if !contains(names, db.Name) {
			continue
		}
		if b.Kind == ActiveMQ && (db.Kind != Postgres || len(db.Replicas) > 0) {
			kind := string(db.Kind)
			if len(db.Replicas) > 0 {
				kind += " with replicas"
			}
			d.errorf(b.dbPos, "%s database: %q is %s; kind activemq's jdbc store is given one postgres server (Debian's PostgreSQL JDBC driver)",
				what, db.Name, kind)
		}
		for _, sv := range db.Servers() {
			if n.Site != "" && sv.Site != "" && sv.Site != n.Site && !hasLink(n.Site, sv.Site) {
				d.errorf(b.dbPos, "%s database: node in site %q cannot reach database %q in site %q: add the link [%s, %s]",
					what, n.Site, sv.Name, sv.Site, n.Site, sv.Site)
			}
		}
	}
}

// validateNodeRefs checks that {peer.NAME} and {repl.NAME} name another
// node that this node's site reaches.
func (d *decoder) validateNodeRefs(t *Topology, n Node, hasLink func(a, b string) bool) {
	b := n.Broker
	strs := append(append([]string{}, b.Command...), b.Args...)
	for _, v := range b.Env {
		strs = append(strs, v)
	}
	for _, s := range strs {
		for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
			kind, name, named := strings.Cut(m[1], ".")
			if !named || !contains(NodePlaceholders, kind) {
				continue
			}
			var to *Node
			for i := range t.Nodes {
				if t.Nodes[i].Name == name {
					to = &t.Nodes[i]
				}
			}
			switch {
			case to == nil:
				d.errorf(b.Pos, "node %q broker: placeholder {%s}: no node %q", n.Name, m[1], name)
			case to.Name == n.Name:
				d.errorf(b.Pos, "node %q broker: placeholder {%s} names the node itself (use {%s})", n.Name, m[1], map[string]string{"peer": "listen", "repl": "repl"}[kind])
			case to.Site != n.Site && !hasLink(n.Site, to.Site):
				d.errorf(b.Pos, "node %q broker: placeholder {%s}: site %q has no link to site %q", n.Name, m[1], n.Site, to.Site)
			}
		}
	}
}

func usesDSN(b Broker) bool {
	for _, s := range append(append([]string{}, b.Command...), b.Args...) {
		if strings.Contains(s, "{dsn}") {
			return true
		}
	}
	for _, s := range b.Env {
		if strings.Contains(s, "{dsn}") {
			return true
		}
	}
	return false
}

// RefBrokerDestinations says what refbroker accepts as a destination
// (broker/server refuses anything else with an ERROR): queues only.
const RefBrokerDestinations = "/queue/<name>"

// validateDestinations checks each workload destination against the
// brokers the clients connect to, where their kind is known: refbroker
// serves queues only, so a topic or a bare name would be refused on every
// SEND and the run would acknowledge nothing. A command broker's rules are
// its own; only an empty destination is refused for every broker.
func (d *decoder) validateDestinations(s *Scenario) {
	w := &s.Workload
	var refNodes []string
	for _, c := range w.Connect {
		for _, n := range s.Topology.Nodes {
			if n.Name == c && n.Broker.Kind == RefBroker {
				refNodes = append(refNodes, c)
			}
		}
	}
	for i, dest := range w.Destinations {
		p := w.Pos
		if i < len(w.destPos) {
			p = w.destPos[i]
		}
		switch {
		case strings.TrimSpace(dest) == "":
			d.errorf(p, "workload destination: empty; expected a destination like /queue/lossbench")
		case len(refNodes) > 0 && !refBrokerAccepts(dest):
			d.errorf(p, "workload destination %q: refbroker (node %s) serves queues only, %s; it would refuse every send and the run would acknowledge nothing",
				dest, strings.Join(refNodes, ", "), RefBrokerDestinations)
		}
	}
}

// refBrokerAccepts is refbroker's destination rule (broker/server's
// queueName): "/queue/" and a name.
func refBrokerAccepts(dest string) bool {
	return strings.HasPrefix(dest, "/queue/") && len(dest) > len("/queue/")
}

// validateProtocol settles the workload's protocol (by default the one the
// connected nodes speak) and checks that every connected node speaks it
// and that the workload asks nothing the protocol lacks.
func (d *decoder) validateProtocol(s *Scenario) {
	w := &s.Workload
	kinds := map[string]BrokerKind{}
	for _, n := range s.Topology.Nodes {
		kinds[n.Name] = n.Broker.Kind
	}
	if w.Protocol == "" {
		w.Protocol = ProtocolSTOMP
		for _, c := range w.Connect {
			if p := NativeProtocol(kinds[c]); p != "" {
				w.Protocol = p
				break
			}
		}
	}
	p := w.protocolPos
	if p.Line == 0 {
		p = w.Pos
	}
	for _, c := range w.Connect {
		if np := NativeProtocol(kinds[c]); np != "" && np != w.Protocol {
			d.errorf(p, "workload protocol %s: node %q (kind %s) speaks %s only", w.Protocol, c, kinds[c], np)
		}
	}
	if w.Protocol == ProtocolSTOMP {
		return
	}
	if w.Producers.Transactions > 0 {
		d.errorf(p, "workload protocol %s: producers transactions are STOMP's; this client sends one confirmed message at a time", w.Protocol)
	}
	if w.Consumers.Ack != AckClientIndividual {
		d.errorf(p, "workload protocol %s: consumers ack %s is STOMP's; %s acknowledges each message (client-individual)", w.Protocol, w.Consumers.Ack, w.Protocol)
	}
	if !w.Producers.Persistent {
		d.errorf(p, "workload protocol %s: producers persistent: false is STOMP's; %s messages are as persistent as the broker's queue or stream", w.Protocol, w.Protocol)
	}
}

// CheckNATSSync checks a nats node's fsync: "" (nats-server's default
// sync_interval), "always", or a positive duration.
func CheckNATSSync(v string) error {
	if v == "" || v == "always" {
		return nil
	}
	if dur, err := time.ParseDuration(v); err != nil || dur <= 0 {
		return fmt.Errorf("unknown %q for kind nats; expected always or a duration such as 2m (JetStream's sync_interval)", v)
	}
	return nil
}

func joinKinds(ks []BrokerKind) string {
	var ss []string
	for _, k := range ks {
		ss = append(ss, string(k))
	}
	return strings.Join(ss, ", ")
}

// validateSpares checks spare nodes and the machine-lost faults that move
// disks to them: a spare has no disk of its own, takes the disks of one
// machine-lost at most, and every spare is some move's target; the lost
// node has a disk of its own to move.
func (d *decoder) validateSpares(s *Scenario, ref func(Pos, string, string, string) bool) {
	t := &s.Topology
	node := map[string]Node{}
	for _, n := range t.Nodes {
		node[n.Name] = n
	}
	ownDisk := map[string]bool{}
	for _, k := range t.Disks {
		for _, n := range k.Attached() {
			if sp, ok := node[n]; ok && sp.Spare {
				d.errorf(k.Pos, "disk %q: node %q is a spare: it has no disk of its own, it takes those of a lost node (machine-lost move_disks_to)", k.Name, n)
			}
		}
		if !k.Shared() {
			ownDisk[k.Node] = true
		}
	}
	movedTo := map[string]int{}
	for _, f := range s.Faults {
		if f.MoveDisksTo == "" || !ref(f.movePos, "fault machine-lost move_disks_to", "node", f.MoveDisksTo) {
			continue
		}
		what := "fault machine-lost move_disks_to"
		if !node[f.MoveDisksTo].Spare {
			d.errorf(f.movePos, "%s: node %q is not a spare (declare it with spare: true; it is started only when it takes the disks)", what, f.MoveDisksTo)
			continue
		}
		if line, dup := movedTo[f.MoveDisksTo]; dup {
			d.errorf(f.movePos, "%s: spare %q already takes the disks of the machine-lost at line %d", what, f.MoveDisksTo, line)
		}
		movedTo[f.MoveDisksTo] = f.Pos.Line
		targets := f.OneOf
		if len(targets) == 0 {
			targets = []Target{f.Target}
		}
		for _, tg := range targets {
			switch {
			case tg.Node == f.MoveDisksTo:
				d.errorf(f.movePos, "%s: %q is the lost node itself", what, tg.Node)
			case node[tg.Node].Spare:
				d.errorf(f.movePos, "%s: the lost node %q is a spare itself", what, tg.Node)
			case tg.Node != "" && !ownDisk[tg.Node]:
				d.errorf(f.movePos, "%s: node %q has no disk of its own to move (declare one under topology.disks; a shared disk is not the node's to move)", what, tg.Node)
			}
		}
	}
	for _, n := range t.Nodes {
		if n.Spare && movedTo[n.Name] == 0 {
			d.errorf(n.Pos, "node %q: a spare that no machine-lost moves disks to (move_disks_to) is never started", n.Name)
		}
	}
}
