// Package drivertest is the conformance suite every driver runs:
// driver.Fake, local and docker. Run(t, setup) plays the interface's
// contract on a small two-site topology: start, stop, kill, pause and
// resume, cut and heal a link, a toxic, wipe a disk, kill and restart a
// database, how nodes ended (exits), and Close leaving nothing behind.
// A driver that runs real brokers (Setup.Serves) is checked through them:
// a STOMP client on the node's ClientAddr connects or cannot, a message
// sent with a receipt survives a kill and is gone after the disk is
// wiped.
package drivertest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Setup is how a driver runs the suite.
type Setup struct {
	// New makes the driver under test for cfg; the suite fills Topology,
	// Dir, StateDir, RunID, Scenario and Log, New adds what its driver
	// needs (BrokerBin). The suite Closes it.
	New func(t *testing.T, cfg driver.Config) (driver.Driver, error)
	// Serves says the driver runs real brokers (refbroker) reachable on
	// ClientAddr; false for one that only models them (driver.Fake).
	Serves bool
	// Database is the kind of server database the topology has (node b1
	// stores into it with store jdbc); "" for none.
	Database scenario.DatabaseKind
	// Databases, if set, runs the database part once per kind instead
	// (subtests Database/postgres, Database/mariadb).
	Databases []scenario.DatabaseKind
	// Leftovers, if set, lists what the driver left on the machine after
	// Close for cfg's run (processes, containers, volumes, mounts): the
	// suite wants none.
	Leftovers func(t *testing.T, cfg driver.Config) []string
	// Only, if set, names the subtests to run (a short subset).
	Only []string
}

// Topology is the suite's topology: sites a and b linked, clients outside
// both; node a1 in a (journal on disk a1-data), b1 in b (memory, or jdbc
// on database db1 in b when db is set).
func Topology(t *testing.T, db scenario.DatabaseKind) scenario.Topology {
	t.Helper()
	b1 := `{kind: refbroker, store: memory}`
	dbs := ""
	if db != "" {
		b1 = `{kind: refbroker, store: jdbc, database: db1}`
		dbs = "\n  databases:\n    - {name: db1, site: b, kind: " + string(db) + "}"
	}
	y := `name: drivertest
strategy: conformance
failure: none
topology:
  sites: [a, b]
  links:
    - [a, b]
  nodes:
    - {name: a1, site: a, broker: {kind: refbroker, store: journal, fsync: batch}}
    - {name: b1, site: b, broker: ` + b1 + `}
  disks:
    - {name: a1-data, node: a1}` + dbs + `
workload:
  destination: /queue/drivertest
  producers: {count: 1, rate: 1, size: 64B}
  consumers: {count: 1, ack: client-individual}
  duration: 1s
`
	sc, err := scenario.Parse("drivertest.yaml", []byte(y))
	if err != nil {
		t.Fatalf("drivertest topology: %v", err)
	}
	return sc.Topology
}

// Run runs the suite, each part on a fresh driver.
func Run(t *testing.T, s Setup) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, s Setup, d driver.Driver)
	}{
		{"StartStop", testStartStop},
		{"Kill", testKill},
		{"PauseResume", testPauseResume},
		{"CutHeal", testCutHeal},
		{"Toxic", testToxic},
		{"WipeDisk", testWipeDisk},
		{"Database", testDatabase},
		{"Exits", testExits},
		{"Close", testClose},
	} {
		if s.Only != nil && !contains(s.Only, tc.name) {
			continue
		}
		if tc.name == "Database" && len(s.Databases) > 0 {
			t.Run(tc.name, func(t *testing.T) {
				for _, kind := range s.Databases {
					s := s
					s.Database, s.Databases = kind, nil
					t.Run(string(kind), func(t *testing.T) { runPart(t, s, tc.name, tc.f) })
				}
			})
			continue
		}
		t.Run(tc.name, func(t *testing.T) { runPart(t, s, tc.name, tc.f) })
	}
}

// runPart runs one part of the suite on a fresh driver.
func runPart(t *testing.T, s Setup, name string, f func(t *testing.T, s Setup, d driver.Driver)) {
	// Only the database part has one: starting a server takes seconds.
	var db scenario.DatabaseKind
	if name == "Database" {
		db = s.Database
	}
	cfg := driver.Config{Topology: Topology(t, db), RunID: "dt" + time.Now().UTC().Format("150405.000000"),
		Scenario: "drivertest", Dir: filepath.Join(t.TempDir(), "run"), StateDir: t.TempDir(), Log: t.Logf}
	d, err := s.New(t, cfg)
	closed := false
	if d != nil {
		t.Cleanup(func() {
			if !closed {
				if err := d.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
	if err != nil {
		t.Fatalf("new driver: %v", err)
	}
	f(t, s, d)
	if name == "Close" {
		closed = true
		if s.Leftovers != nil {
			if left := s.Leftovers(t, cfg); len(left) > 0 {
				t.Errorf("left behind after Close: %q", left)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, d driver.Driver, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		if err := d.Start(ctxT(t), n); err != nil {
			t.Fatalf("Start %s: %v", n, err)
		}
		if !d.Running(n) {
			t.Fatalf("Running(%s) = false after Start", n)
		}
	}
}

// probeTimeout bounds one STOMP connect: a node that does not answer in
// this time is unreachable (paused, cut or black-holed).
const probeTimeout = 2 * time.Second

// connect opens a STOMP session on node's ClientAddr.
func connect(d driver.Driver, node string) (*stomp.Conn, error) {
	addr, err := d.ClientAddr(node)
	if err != nil {
		return nil, err
	}
	nc, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(probeTimeout))
	c, err := stomp.Connect(nc, stomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// reachable waits until a STOMP client connects to node (true), or says
// it cannot within a few probes (false) when want is false.
func reachable(t *testing.T, d driver.Driver, node string, want bool) {
	t.Helper()
	var err error
	tries := 1
	if want {
		tries = 20 // a healed link or resumed node needs a moment
	}
	for i := 0; i < tries; i++ {
		var c *stomp.Conn
		c, err = connect(d, node)
		if err == nil {
			c.Disconnect()
			break
		}
		if want {
			time.Sleep(100 * time.Millisecond)
		}
	}
	switch {
	case want && err != nil:
		t.Fatalf("%s: a STOMP client cannot connect: %v", node, err)
	case !want && err == nil:
		t.Fatalf("%s: a STOMP client connects, want it cut off", node)
	}
}

func testStartStop(t *testing.T, s Setup, d driver.Driver) {
	ctx := ctxT(t)
	start(t, d, "a1", "b1")
	if s.Serves {
		reachable(t, d, "a1", true)
	}
	if err := d.Stop(ctx, "a1"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d.Running("a1") {
		t.Fatal("Running(a1) after Stop")
	}
	if !d.Running("b1") {
		t.Fatal("Stop a1 stopped b1")
	}
	if s.Serves {
		reachable(t, d, "a1", false)
	}
	if err := d.Stop(ctx, "a1"); err != nil {
		t.Fatalf("Stop of a stopped node: %v", err)
	}
	start(t, d, "a1")
	if s.Serves {
		reachable(t, d, "a1", true)
	}
	if err := d.Start(ctx, "nope"); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("Start(nope) = %v, want ErrUnknown", err)
	}
	if _, err := d.ClientAddr("nope"); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("ClientAddr(nope) = %v, want ErrUnknown", err)
	}
	if d.Info().Name == "" {
		t.Fatal("Info has no driver name")
	}
}

func testKill(t *testing.T, s Setup, d driver.Driver) {
	ctx := ctxT(t)
	start(t, d, "a1")
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if d.Running("a1") {
		t.Fatal("Running(a1) after Kill")
	}
	if s.Serves {
		reachable(t, d, "a1", false)
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatalf("Kill of a dead node: %v", err)
	}
	start(t, d, "a1")
	if s.Serves {
		reachable(t, d, "a1", true)
	}
}

func testPauseResume(t *testing.T, s Setup, d driver.Driver) {
	ctx := ctxT(t)
	start(t, d, "a1")
	if err := d.Pause(ctx, "a1"); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if !d.Running("a1") {
		t.Fatal("a paused node is not Running")
	}
	if s.Serves {
		reachable(t, d, "a1", false)
	}
	if err := d.Resume(ctx, "a1"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if s.Serves {
		reachable(t, d, "a1", true)
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Pause(ctx, "a1"); err == nil {
		t.Fatal("Pause of a dead node: no error")
	}
}

func links(t *testing.T, d driver.Driver) driver.Links {
	l, ok := d.(driver.Links)
	if !ok {
		t.Skipf("%s driver has no links", d.Info().Name)
	}
	return l
}

func testCutHeal(t *testing.T, s Setup, d driver.Driver) {
	ctx := ctxT(t)
	l := links(t, d)
	start(t, d, "a1", "b1")
	// Cuts nest: two cuts need two heals.
	for i := 0; i < 2; i++ {
		if err := l.Cut(ctx, "a1", driver.Any); err != nil {
			t.Fatalf("Cut: %v", err)
		}
	}
	if s.Serves {
		reachable(t, d, "a1", false)
		reachable(t, d, "b1", true)
	}
	if err := l.Heal(ctx, "a1", driver.Any); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	if s.Serves {
		reachable(t, d, "a1", false)
	}
	if err := l.Heal(ctx, "a1", driver.Any); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	if s.Serves {
		reachable(t, d, "a1", true)
	}
	if err := l.Cut(ctx, "nope", driver.Any); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("Cut(nope) = %v, want ErrUnknown", err)
	}
}

func testToxic(t *testing.T, s Setup, d driver.Driver) {
	ctx := ctxT(t)
	l := links(t, d)
	start(t, d, "a1")
	id, err := l.AddToxic(ctx, "a1", driver.Any, driver.Toxic{Kind: driver.ToxicBlackhole})
	if err != nil {
		t.Fatalf("AddToxic: %v", err)
	}
	if s.Serves {
		reachable(t, d, "a1", false)
	}
	if err := l.RemoveToxic(ctx, id); err != nil {
		t.Fatalf("RemoveToxic: %v", err)
	}
	if s.Serves {
		reachable(t, d, "a1", true)
	}
	if err := l.RemoveToxic(ctx, id); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("RemoveToxic twice = %v, want ErrUnknown", err)
	}
}

// send sends one persistent message to node and waits for its receipt.
func send(t *testing.T, d driver.Driver, node, body string) {
	t.Helper()
	c, err := connect(d, node)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	defer c.Disconnect()
	if err := c.Send("/queue/drivertest", "text/plain", []byte(body), stomp.SendOpt.Receipt, stomp.SendOpt.Header("persistent", "true")); err != nil {
		t.Fatalf("send to %s: %v", node, err)
	}
}

// stored lists the messages node serves: what a consumer receives until
// the queue has been quiet for a moment.
func stored(t *testing.T, d driver.Driver, node string) []string {
	t.Helper()
	c, err := connect(d, node)
	if err != nil {
		t.Fatalf("connect %s: %v", node, err)
	}
	defer c.Disconnect()
	sub, err := c.Subscribe("/queue/drivertest", stomp.AckAuto)
	if err != nil {
		t.Fatalf("subscribe on %s: %v", node, err)
	}
	defer sub.Unsubscribe()
	var got []string
	for {
		select {
		case m, ok := <-sub.C:
			if !ok || m.Err != nil {
				return got
			}
			got = append(got, string(m.Body))
		case <-time.After(time.Second):
			return got
		}
	}
}

func disks(t *testing.T, d driver.Driver) driver.Disks {
	dd, ok := d.(driver.Disks)
	if !ok {
		t.Skipf("%s driver has no disks", d.Info().Name)
	}
	return dd
}

func testWipeDisk(t *testing.T, s Setup, d driver.Driver) {
	ctx := ctxT(t)
	dd := disks(t, d)
	start(t, d, "a1")
	if s.Serves {
		send(t, d, "a1", "kept")
		if dp, ok := d.(driver.Depths); ok {
			if n, ok := dp.QueueDepth(ctx, "a1", "/queue/drivertest"); !ok || n != 1 {
				t.Fatalf("QueueDepth(a1) = %d, %v after one send, want 1", n, ok)
			}
		}
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	start(t, d, "a1")
	if s.Serves {
		if got := stored(t, d, "a1"); len(got) != 1 || got[0] != "kept" {
			t.Fatalf("after a kill a1 serves %q, want [kept]", got)
		}
		send(t, d, "a1", "wiped")
	}
	if err := d.Kill(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := dd.WipeDisk(ctx, "a1-data"); err != nil {
		t.Fatalf("WipeDisk: %v", err)
	}
	start(t, d, "a1")
	if s.Serves {
		if got := stored(t, d, "a1"); len(got) != 0 {
			t.Fatalf("after its disk was wiped a1 serves %q, want nothing", got)
		}
	}
	if err := dd.WipeDisk(ctx, "nope"); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("WipeDisk(nope) = %v, want ErrUnknown", err)
	}
}

func testDatabase(t *testing.T, s Setup, d driver.Driver) {
	if s.Database == "" {
		t.Skip("no server database in this setup")
	}
	ctx := ctxT(t)
	dbs, ok := d.(driver.Databases)
	if !ok {
		t.Skipf("%s driver runs no databases", d.Info().Name)
	}
	start(t, d, "b1")
	if s.Serves {
		send(t, d, "b1", "before")
	}
	// A driver that can tell whether its server runs (local, docker) is
	// held to it.
	up, canTell := d.(interface{ DatabaseRunning(string) bool })
	if canTell && !up.DatabaseRunning("db1") {
		t.Fatal("DatabaseRunning(db1) = false with b1 started on it")
	}
	if err := dbs.KillDB(ctx, "db1"); err != nil {
		t.Fatalf("KillDB: %v", err)
	}
	if canTell && up.DatabaseRunning("db1") {
		t.Fatal("DatabaseRunning(db1) after KillDB")
	}
	if err := dbs.KillDB(ctx, "db1"); err != nil {
		t.Fatalf("KillDB of a killed database: %v", err)
	}
	if err := dbs.RestartDB(ctx, "db1"); err != nil {
		t.Fatalf("RestartDB: %v", err)
	}
	if canTell && !up.DatabaseRunning("db1") {
		t.Fatal("DatabaseRunning(db1) = false after RestartDB")
	}
	if err := dbs.RestartDB(ctx, "db1"); err != nil {
		t.Fatalf("RestartDB of a running database: %v", err)
	}
	if s.Serves {
		// The broker rides out the lost database and reconnects; what it
		// committed before the crash is still there.
		var got []string
		for i := 0; i < 30 && len(got) == 0; i++ {
			if c, err := connect(d, "b1"); err == nil {
				c.Disconnect()
				got = stored(t, d, "b1")
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if len(got) != 1 || got[0] != "before" {
			t.Fatalf("after the database restarted b1 serves %q, want [before]", got)
		}
	}
	if err := dbs.KillDB(ctx, "nope"); !errors.Is(err, driver.ErrUnknown) {
		t.Fatalf("KillDB(nope) = %v, want ErrUnknown", err)
	}
}

func testClose(t *testing.T, s Setup, d driver.Driver) {
	start(t, d, "a1", "b1")
	if err := d.Pause(ctxT(t), "b1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close twice: %v", err)
	}
	for _, n := range []string{"a1", "b1"} {
		if d.Running(n) {
			t.Errorf("Running(%s) after Close", n)
		}
	}
	if s.Serves {
		reachable(t, d, "a1", false)
	}
}
