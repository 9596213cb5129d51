package scenario

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// scenario decodes the top level.
func (d *decoder) scenario(n *yaml.Node) *Scenario {
	s := &Scenario{File: d.file, Seed: DefaultSeed, Writeback: WritebackHost}
	f := d.mapping(n, "scenario", "name", "description", "seed", "strategy", "failure",
		"matrix", "topology", "workload", "faults", "expectations", "writeback")
	if f == nil {
		return s
	}
	d.require(f, "name", "strategy", "failure", "topology", "workload")
	if v := f.get("name"); v != nil {
		s.Name = d.name(v, "name")
	}
	if v := f.get("description"); v != nil {
		s.Description = d.str(v, "description")
	}
	if v := f.get("seed"); v != nil {
		s.Seed = d.int(v, "seed")
	}
	if v := f.get("strategy"); v != nil {
		s.Strategy = d.name(v, "strategy")
	}
	if v := f.get("failure"); v != nil {
		s.Failure = d.str(v, "failure")
		if s.Failure != "" && !contains(Failures, s.Failure) {
			d.errorf(pos(v), "failure: unknown %q; expected one of: %s", s.Failure, strings.Join(Failures, ", "))
		}
	}
	if v := f.get("matrix"); v != nil {
		s.Matrix = d.matrix(v)
	}
	if v := f.get("writeback"); v != nil {
		switch w := d.str(v, "writeback"); {
		case contains(WritebackModels, w):
			s.Writeback = w
		case v.Kind == yaml.ScalarNode:
			d.errorf(pos(v), "writeback: unknown %q; expected one of: %s", w, strings.Join(WritebackModels, ", "))
		}
	}
	if v := f.get("topology"); v != nil {
		s.Topology = d.topology(v)
	}
	if v := f.get("workload"); v != nil {
		s.Workload = d.workload(v)
	}
	if v := f.get("faults"); v != nil && v.Tag != "!!null" {
		for _, it := range d.list(v, "faults", "faults") {
			if flt, ok := d.fault(it); ok {
				s.Faults = append(s.Faults, flt)
			}
		}
	}
	if v := f.get("expectations"); v != nil && v.Tag != "!!null" {
		s.Expectations, s.Exits = d.expectations(v)
	}
	return s
}

func (d *decoder) topology(n *yaml.Node) Topology {
	var t Topology
	f := d.mapping(n, "topology", "sites", "links", "nodes", "disks", "databases")
	if f == nil {
		return t
	}
	d.require(f, "sites", "nodes")
	for _, key := range []string{"sites", "nodes"} {
		if v := f.get(key); v != nil && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			d.errorf(pos(v), "%s: expected at least one", key)
		}
	}
	for _, it := range d.list(f.get("sites"), "sites", "site names") {
		if name := d.name(it, "sites"); name != "" {
			t.Sites = append(t.Sites, Site{Name: name, Pos: pos(it)})
		}
	}
	for _, it := range d.list(f.get("links"), "links", "site pairs like [a, b]") {
		if p := d.pair(it, "links"); p != nil {
			t.Links = append(t.Links, Link{A: p[0], B: p[1], Pos: pos(it), aPos: pos(it.Content[0]), bPos: pos(it.Content[1])})
		}
	}
	for _, it := range d.list(f.get("nodes"), "nodes", "nodes") {
		t.Nodes = append(t.Nodes, d.node(it))
	}
	for _, it := range d.list(f.get("disks"), "disks", "disks") {
		t.Disks = append(t.Disks, d.disk(it))
	}
	for _, it := range d.list(f.get("databases"), "databases", "databases") {
		t.Databases = append(t.Databases, d.database(it))
	}
	return t
}

func (d *decoder) node(n *yaml.Node) Node {
	nd := Node{Pos: pos(n), Broker: Broker{Kind: RefBroker, Pos: pos(n)}}
	f := d.mapping(n, labelled(n, "node"), "name", "site", "broker", "spare", "image")
	if f == nil {
		return nd
	}
	if v := f.get("spare"); v != nil {
		nd.Spare = d.bool(v, f.what+" spare")
	}
	nd.Name = d.name(f.get("name"), "node name")
	d.require(f, "name", "site", "broker")
	nd.Site, nd.sitePos = d.name(f.get("site"), f.what+" site"), posOf(f.get("site"), nd.Pos)
	if v := f.get("broker"); v != nil {
		nd.Broker = d.broker(v, f.what+" broker")
	}
	if v := f.get("image"); v != nil {
		nd.Image = d.image(v, f.what+" image")
	}
	return nd
}

// imageRE is a container image reference: an optional registry host
// (with a port), a lower-case path, an optional tag and digest.
var imageRE = regexp.MustCompile(`^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

// image reads a container image reference.
func (d *decoder) image(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if !imageRE.MatchString(s) {
		d.errorf(pos(n), "%s: %q is not an image reference; expected e.g. postgres:15, lossbench/refbroker:TAG or registry.example:5000/team/broker@sha256:<64 hex>", what, s)
	}
	return s
}

var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

func (d *decoder) broker(n *yaml.Node, what string) Broker {
	b := Broker{Kind: RefBroker, Pos: pos(n)}
	f := d.mapping(n, what, "kind", "store", "fsync", "args", "command", "env", "database", "databases")
	if f == nil {
		return b
	}
	if v := f.get("kind"); v != nil {
		b.Kind = BrokerKind(d.str(v, what+" kind"))
		if b.Kind != "" && !contains(BrokerKinds, b.Kind) {
			d.errorf(pos(v), "%s kind: unknown %q; expected one of: %s", what, b.Kind, joinKinds(BrokerKinds))
		}
	}
	if v := f.get("store"); v != nil {
		b.Store = d.str(v, what+" store")
		b.storePos = pos(v)
	}
	if v := f.get("database"); v != nil {
		b.Database, b.dbPos = d.name(v, what+" database"), pos(v)
	}
	if v := f.get("databases"); v != nil {
		if v.Kind != yaml.SequenceNode {
			d.errorf(pos(v), "%s databases: expected a list of database names", what)
		} else {
			for _, it := range v.Content {
				b.Databases = append(b.Databases, d.name(it, what+" databases"))
			}
		}
		if b.Database != "" {
			d.errorf(pos(v), "%s: database and databases are both set: name one database, or two or more in databases", what)
		}
		b.dbPos = pos(v)
	}
	if v := f.get("fsync"); v != nil {
		b.Fsync = d.str(v, what+" fsync")
		switch b.Kind {
		case NATS:
			if err := CheckNATSSync(b.Fsync); err != nil {
				d.errorf(pos(v), "%s fsync: %v", what, err)
			}
		case ActiveMQ:
			if b.Fsync != "" && !contains(ActiveMQSyncStrategies, b.Fsync) {
				d.errorf(pos(v), "%s fsync: unknown %q for kind activemq; expected KahaDB's journalDiskSyncStrategy, one of: %s", what, b.Fsync, strings.Join(ActiveMQSyncStrategies, ", "))
			}
		case RabbitMQ:
			d.errorf(pos(v), "%s fsync: does not apply to kind rabbitmq (a publisher confirm waits for its queue's own fsync)", what)
		default:
			if b.Fsync != "" && !contains(FsyncPolicies, b.Fsync) {
				d.errorf(pos(v), "%s fsync: unknown %q; expected one of: %s", what, b.Fsync, strings.Join(FsyncPolicies, ", "))
			}
		}
	}
	checkPlaceholders := func(v *yaml.Node, s string) {
		for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
			kind, name, named := strings.Cut(m[1], ".")
			if !contains(Placeholders, m[1]) && !(named && name != "" && contains(NodePlaceholders, kind)) {
				d.errorf(pos(v), "%s: unknown placeholder {%s}; expected one of: {%s}, {peer.NODE}, {repl.NODE}", what, m[1], strings.Join(Placeholders, "}, {"))
			}
		}
	}
	if v := f.get("args"); v != nil {
		for _, it := range d.list(v, what+" args", "strings") {
			s := d.str(it, what+" args")
			checkPlaceholders(it, s)
			b.Args = append(b.Args, s)
		}
	}
	if v := f.get("command"); v != nil {
		for _, it := range d.list(v, what+" command", "strings") {
			s := d.str(it, what+" command")
			checkPlaceholders(it, s)
			b.Command = append(b.Command, s)
		}
	}
	if v := f.get("env"); v != nil {
		if v.Kind != yaml.MappingNode {
			d.errorf(pos(v), "%s env: expected a mapping of NAME: value, got %s", what, describe(v))
		} else {
			b.Env = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, val := v.Content[i], v.Content[i+1]
				key := d.str(k, what+" env")
				if _, dup := b.Env[key]; dup {
					d.errorf(pos(k), "%s env: duplicate key %q", what, key)
				}
				s := d.str(val, what+" env "+key)
				checkPlaceholders(val, s)
				b.Env[key] = s
			}
		}
	}
	switch b.Kind {
	case RefBroker:
		if b.Store == "" && f.get("store") == nil {
			d.errorf(pos(n), "%s: missing key \"store\" (refbroker needs a store, e.g. memory or journal)", what)
		}
		if f.has("command") {
			d.errorf(pos(f.keys["command"]), "%s: \"command\" applies only to kind: command", what)
		}
	case Command:
		if len(b.Command) == 0 {
			d.errorf(pos(n), "%s: kind command needs a non-empty \"command\", e.g. [activemq, start]", what)
		}
	case RabbitMQ:
		if b.Store != "" && !contains(RabbitMQQueueTypes, b.Store) {
			d.errorf(b.storePos, "%s store: unknown %q for kind rabbitmq; expected the queue type, one of: %s", what, b.Store, strings.Join(RabbitMQQueueTypes, ", "))
		}
	case ActiveMQ:
		switch {
		case b.Store != "" && !contains(ActiveMQStores, b.Store):
			d.errorf(b.storePos, "%s store: unknown %q for kind activemq; expected one of: %s", what, b.Store, strings.Join(ActiveMQStores, ", "))
		case b.Store == ActiveMQJDBC && f.has("fsync"):
			d.errorf(pos(f.keys["fsync"]), "%s fsync: is KahaDB's journalDiskSyncStrategy; store jdbc commits each message to the database", what)
		case b.Store == ActiveMQJDBC && b.Database == "":
			d.errorf(pos(n), "%s: store jdbc needs a database: add database: <name of a postgres database>", what)
		case b.Store != ActiveMQJDBC && f.has("database"):
			d.errorf(pos(f.keys["database"]), "%s: database applies to kind activemq with store jdbc only", what)
		}
	}
	switch b.Kind {
	case RefBroker, Command:
	default:
		keys := []string{"command", "database", "databases"}
		if b.Kind == ActiveMQ {
			keys = []string{"command", "databases"}
		}
		for _, k := range keys {
			if f.has(k) {
				d.errorf(pos(f.keys[k]), "%s: %q does not apply to kind: %s (its configuration is generated)", what, k, b.Kind)
			}
		}
	}
	return b
}

func (d *decoder) disk(n *yaml.Node) Disk {
	k := Disk{Pos: pos(n)}
	f := d.mapping(n, labelled(n, "disk"), "name", "node", "nodes", "size", "mirror_of")
	if f == nil {
		return k
	}
	k.Name = d.name(f.get("name"), "disk name")
	d.require(f, "name")
	switch v := f.get("nodes"); {
	case v != nil && f.get("node") != nil:
		d.errorf(pos(v), "%s: node and nodes both given; a disk of one node has node, a shared disk nodes", f.what)
	case v != nil:
		for _, it := range d.list(v, f.what+" nodes", "node names") {
			k.Nodes = append(k.Nodes, d.name(it, f.what+" nodes"))
			k.nodesPos = append(k.nodesPos, pos(it))
		}
		if len(k.Nodes) == 0 {
			d.errorf(pos(v), "%s nodes: empty; name the nodes that share the disk", f.what)
		} else {
			k.Node, k.nodePos = k.Nodes[0], k.nodesPos[0]
		}
	default:
		d.require(f, "node")
		k.Node, k.nodePos = d.name(f.get("node"), f.what+" node"), posOf(f.get("node"), k.Pos)
	}
	if v := f.get("size"); v != nil {
		k.Size = d.size(v, f.what+" size")
	}
	if v := f.get("mirror_of"); v != nil {
		k.MirrorOf, k.mirrorPos = d.name(v, f.what+" mirror_of"), pos(v)
	}
	return k
}

func (d *decoder) database(n *yaml.Node) Database {
	db := Database{Pos: pos(n)}
	f := d.mapping(n, labelled(n, "database"), "name", "site", "kind", "replicas", "failover", "image")
	if f == nil {
		return db
	}
	db.Name = d.name(f.get("name"), "database name")
	d.require(f, "name", "site", "kind")
	db.Site, db.sitePos = d.name(f.get("site"), f.what+" site"), posOf(f.get("site"), db.Pos)
	if v := f.get("kind"); v != nil {
		db.Kind = DatabaseKind(d.str(v, f.what+" kind"))
		if db.Kind != "" && !contains([]DatabaseKind{Postgres, MariaDB, SQLite}, db.Kind) {
			d.errorf(pos(v), "%s kind: unknown %q; expected postgres, mariadb or sqlite", f.what, db.Kind)
		}
	}
	if v := f.get("replicas"); v != nil {
		items := d.list(v, f.what+" replicas", "replicas")
		if len(items) == 0 && v.Kind == yaml.SequenceNode {
			d.errorf(pos(v), "%s replicas: empty; list the standbys, or leave replicas out", f.what)
		}
		for _, it := range items {
			db.Replicas = append(db.Replicas, d.replica(it, f.what, db.Kind))
		}
		if db.Kind == SQLite {
			d.errorf(pos(v), "%s replicas: a sqlite database is a file of its node, it has no replicas; use postgres (streaming replication) or mariadb (a Galera cluster)", f.what)
		}
	}
	if v := f.get("failover"); v != nil {
		fo := &Failover{Pos: pos(v)}
		if g := d.mapping(v, f.what+" failover", "promote_after", "max_lag"); g != nil && d.require(g, "promote_after") {
			pa := g.get("promote_after")
			fo.PromoteAfter = d.duration(pa, g.what+" promote_after")
			if _, err := parseDuration(pa.Value); err == nil && pa.Kind == yaml.ScalarNode && fo.PromoteAfter <= 0 {
				d.errorf(pos(pa), "%s promote_after: expected a duration above 0", g.what)
			}
			if ml := g.get("max_lag"); ml != nil {
				fo.MaxLag = d.size(ml, g.what+" max_lag")
				if _, err := ParseSize(ml.Value); err == nil && ml.Kind == yaml.ScalarNode && fo.MaxLag <= 0 {
					d.errorf(pos(ml), "%s max_lag: expected a size above 0 (leave it out for no limit)", g.what)
				}
			}
		}
		db.Failover = fo
		if db.Kind == MariaDB {
			d.errorf(pos(v), "%s failover: a Galera cluster (mariadb with replicas) has no primary to promote: every node takes writes, and the broker's DSN names every node; leave failover out", f.what)
		} else if len(db.Replicas) == 0 {
			d.errorf(pos(v), "%s failover: there is no replica to promote; add replicas: [{name: ..., site: ..., sync: true}]", f.what)
		}
	}
	if v := f.get("image"); v != nil {
		db.Image = d.image(v, f.what+" image")
		if db.Kind == SQLite {
			d.errorf(pos(v), "%s image: a sqlite database is a file of its node, it runs no image", f.what)
		}
	}
	return db
}

func (d *decoder) replica(n *yaml.Node, what string, kind DatabaseKind) Replica {
	r := Replica{Pos: pos(n)}
	f := d.mapping(n, what+" "+labelled(n, "replica"), "name", "site", "sync")
	if f == nil {
		return r
	}
	d.require(f, "name", "site")
	if kind == MariaDB {
		// A Galera node certifies every commit with all the others
		// before it returns: there is nothing to choose.
		if v := f.get("sync"); v != nil {
			d.errorf(pos(v), "%s sync: a Galera node (mariadb replica) has no sync setting: every commit is certified by every node before it returns; leave sync out", f.what)
		}
		r.Sync = true
	} else {
		d.require(f, "sync")
	}
	r.Name = d.name(f.get("name"), f.what+" name")
	r.Site, r.sitePos = d.name(f.get("site"), f.what+" site"), posOf(f.get("site"), r.Pos)
	switch v := f.get("sync"); {
	case v == nil:
	case v.Kind == yaml.ScalarNode && v.Tag == "!!str":
		// The one value besides true and false.
		if v.Value != RemoteApply {
			d.errorf(pos(v), "%s sync: expected true, false or %s, got %q", f.what, RemoteApply, v.Value)
		}
		r.Sync, r.Apply = true, true
	default:
		r.Sync = d.bool(v, f.what+" sync")
	}
	return r
}

func (d *decoder) workload(n *yaml.Node) Workload {
	w := Workload{
		Pos:       pos(n),
		Producers: Producers{Size: DefaultSize, Persistent: true},
		Consumers: Consumers{Ack: AckClientIndividual},
		Recovery:  Recovery{RepairAll: true, Wait: DefaultWait, Drain: DefaultDrain, Quiet: DefaultQuiet},
	}
	f := d.mapping(n, "workload", "site", "connect", "protocol", "destination", "destinations",
		"producers", "consumers", "duration", "recovery")
	if f == nil {
		return w
	}
	d.require(f, "producers", "consumers", "duration")
	if v := f.get("site"); v != nil {
		w.Site, w.sitePos = d.name(v, "workload site"), pos(v)
	}
	if v := f.get("connect"); v != nil {
		for _, it := range d.list(v, "workload connect", "node names") {
			w.Connect = append(w.Connect, d.name(it, "workload connect"))
			w.connectPos = append(w.connectPos, pos(it))
		}
	}
	if v := f.get("protocol"); v != nil {
		w.Protocol, w.protocolPos = d.str(v, "workload protocol"), pos(v)
		if !contains(Protocols, w.Protocol) {
			d.errorf(pos(v), "workload protocol: unknown %q; expected one of: %s", w.Protocol, strings.Join(Protocols, ", "))
		}
	}
	switch d.oneOf(f, false, "destination", "destinations") {
	case "destination":
		v := f.get("destination")
		w.Destinations = []string{d.str(v, "workload destination")}
		w.destPos = []Pos{pos(v)}
	case "destinations":
		v := f.get("destinations")
		for _, it := range d.list(v, "workload destinations", "strings") {
			w.Destinations = append(w.Destinations, d.str(it, "workload destinations"))
			w.destPos = append(w.destPos, pos(it))
		}
		if v.Kind == yaml.SequenceNode && len(w.Destinations) == 0 {
			d.errorf(pos(v), "workload destinations: expected at least one destination")
		}
	}
	if v := f.get("producers"); v != nil {
		w.Producers = d.producers(v, w.Producers)
	}
	if v := f.get("consumers"); v != nil {
		w.Consumers = d.consumers(v, w.Consumers)
	}
	if v := f.get("duration"); v != nil {
		nerr := len(d.errs)
		w.Duration = d.duration(v, "workload duration")
		if w.Duration == 0 && len(d.errs) == nerr {
			d.errorf(pos(v), "workload duration: must be more than 0")
		}
	}
	if v := f.get("recovery"); v != nil {
		w.Recovery = d.recovery(v, w.Recovery)
	}
	return w
}

func (d *decoder) producers(n *yaml.Node, p Producers) Producers {
	f := d.mapping(n, "producers", "count", "rate", "size", "persistent", "transactions", "max_messages")
	if f == nil {
		return p
	}
	d.require(f, "count")
	if v := f.get("count"); v != nil {
		n := d.count(v, "producers count")
		if n == 0 && v.Tag == "!!int" && v.Value == "0" {
			d.errorf(pos(v), "producers count: expected at least 1")
		}
		d.atMost(v, "producers count", float64(n), MaxClients)
		p.Count = int(min(n, MaxClients))
	}
	if v := f.get("rate"); v != nil {
		p.Rate = d.float(v, "producers rate")
		if p.Rate < 0 {
			d.errorf(pos(v), "producers rate: must not be negative (0 is as fast as possible)")
		}
		d.atMost(v, "producers rate", p.Rate, MaxRate)
	}
	if v := f.get("size"); v != nil {
		p.Size = d.size(v, "producers size")
		if p.Size > MaxMessageSize {
			d.errorf(pos(v), "producers size: %s is more than the limit of %s", p.Size, MaxMessageSize)
		}
	}
	if v := f.get("persistent"); v != nil {
		p.Persistent = d.bool(v, "producers persistent")
	}
	if v := f.get("transactions"); v != nil {
		n := d.count(v, "producers transactions")
		d.atMost(v, "producers transactions", float64(n), MaxTransaction)
		p.Transactions = int(min(n, MaxTransaction))
	}
	if v := f.get("max_messages"); v != nil {
		p.MaxMessages = d.count(v, "producers max_messages")
		d.atMost(v, "producers max_messages", float64(p.MaxMessages), MaxMessages)
	}
	return p
}

func (d *decoder) consumers(n *yaml.Node, c Consumers) Consumers {
	f := d.mapping(n, "consumers", "count", "ack", "prefetch", "start_delay")
	if f == nil {
		return c
	}
	d.require(f, "count")
	if v := f.get("count"); v != nil {
		n := d.count(v, "consumers count")
		if n == 0 && v.Tag == "!!int" && v.Value == "0" {
			d.errorf(pos(v), "consumers count: expected at least 1 (consumers drain the queue)")
		}
		d.atMost(v, "consumers count", float64(n), MaxClients)
		c.Count = int(min(n, MaxClients))
	}
	if v := f.get("ack"); v != nil {
		c.Ack = AckMode(d.str(v, "consumers ack"))
		if c.Ack != "" && !contains([]AckMode{AckClientIndividual, AckClient, AckAuto}, c.Ack) {
			d.errorf(pos(v), "consumers ack: unknown %q; expected client-individual, client or auto", c.Ack)
		}
	}
	if v := f.get("prefetch"); v != nil {
		n := d.count(v, "consumers prefetch")
		d.atMost(v, "consumers prefetch", float64(n), MaxPrefetch)
		c.Prefetch = int(min(n, MaxPrefetch))
	}
	if v := f.get("start_delay"); v != nil {
		c.StartDelay = d.duration(v, "consumers start_delay")
	}
	return c
}

func (d *decoder) recovery(n *yaml.Node, r Recovery) Recovery {
	f := d.mapping(n, "recovery", "repair", "wait", "drain", "quiet", "restart_args")
	if f == nil {
		return r
	}
	if v := f.get("repair"); v != nil {
		switch {
		case v.Kind == yaml.ScalarNode && v.Value == "all":
			r.RepairAll, r.Repair = true, nil
		case v.Kind == yaml.ScalarNode && v.Value == "none":
			r.RepairAll, r.Repair = false, nil
		case v.Kind == yaml.SequenceNode:
			r.RepairAll = false
			for _, it := range v.Content {
				r.Repair = append(r.Repair, d.name(it, "recovery repair"))
				r.repairPos = append(r.repairPos, pos(it))
			}
		default:
			d.errorf(pos(v), "recovery repair: expected all, none or a list of node and database names, got %s", describe(v))
		}
	}
	if v := f.get("wait"); v != nil {
		r.Wait = d.duration(v, "recovery wait")
	}
	if v := f.get("drain"); v != nil {
		r.Drain = d.duration(v, "recovery drain")
	}
	if v := f.get("quiet"); v != nil {
		r.Quiet = d.duration(v, "recovery quiet")
	}
	if v := f.get("restart_args"); v != nil {
		const what = "recovery restart_args"
		if v.Kind != yaml.MappingNode {
			d.errorf(pos(v), "%s: expected a mapping of node: [arguments], like {a1: [--repair]}, got %s", what, describe(v))
			return r
		}
		r.RestartArgs = map[string][]string{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			node := d.name(k, what)
			if node == "" {
				continue
			}
			if _, dup := r.RestartArgs[node]; dup {
				d.errorf(pos(k), "%s: node %q twice", what, node)
				continue
			}
			args := []string{}
			for _, it := range d.list(val, what+" "+node, "strings") {
				args = append(args, d.str(it, what+" "+node))
			}
			r.RestartArgs[node] = args
			r.restartPos = append(r.restartPos, pos(k))
			r.restartNodes = append(r.restartNodes, node)
		}
	}
	return r
}

// labelled names a list item by its name key, if it has a good one, so
// errors say `node "a1"` rather than just "node".
func labelled(n *yaml.Node, kind string) string {
	if n.Kind != yaml.MappingNode {
		return kind
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "name" && v.Kind == yaml.ScalarNode && nameRE.MatchString(v.Value) {
			return fmt.Sprintf("%s %q", kind, v.Value)
		}
	}
	return kind
}
