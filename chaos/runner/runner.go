// Package runner runs one scenario end to end: it resolves the scenario
// with the seed, starts the topology through a driver, starts consumers
// then producers, plays the fault timeline, stops the producers at the
// duration, runs the recovery phase (repair, wait, drain), stops
// everything, runs the checker and writes the scenario's output folder:
//
//	OUT/<run-id>/<scenario>/plan.json      the resolved scenario
//	                        history.jsonl  every client operation and fault
//	                        result.json    numbers, expectations, environment
//	                        summary.md     the same for people
//	                        logs/<node>.log
//	                        disks/, nodes/ the nodes' data (local driver)
//
// Where the topology runs is the driver's business: the runner knows only
// driver.Driver and its optional capabilities, and gets a driver by name
// from package drivers.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lossbench/lossbench/chaos/checker"
	"github.com/lossbench/lossbench/chaos/driver"
	"github.com/lossbench/lossbench/chaos/driver/drivers"
	"github.com/lossbench/lossbench/chaos/fault"
	"github.com/lossbench/lossbench/chaos/history"
	"github.com/lossbench/lossbench/chaos/workload"
	"github.com/lossbench/lossbench/chaos/workload/amqp"
	"github.com/lossbench/lossbench/chaos/workload/jetstream"
	"github.com/lossbench/lossbench/reports/result"
	"github.com/lossbench/lossbench/scenarios/scenario"
)

// Options configure runs.
type Options struct {
	// Out is the results root; each run writes Out/RunID/<scenario>.
	Out string
	// RunID names this run's folder and prefixes message ids; default
	// NewRunID(now).
	RunID string
	// Seed replaces the scenario's seed when SeedSet.
	Seed    int64
	SeedSet bool
	// Driver is the driver's name (drivers.Names): "local", "docker", or
	// "auto" for the first that works here and runs the scenario (each
	// scenario's choice is logged with its reason); default "local".
	Driver string
	// NewDriver, if set, makes the driver instead of the named one (tests
	// run the runner's logic on a driver.Fake this way).
	NewDriver driver.Factory
	// BrokerBin is the refbroker executable (see FindBroker).
	BrokerBin string
	// BrokerImage is driver.Config.BrokerImage (--refbroker-image).
	BrokerImage string
	// DatabaseImages is driver.Config.DatabaseImages (--postgres-image,
	// --mariadb-image).
	DatabaseImages map[string]string
	// PeerImages is driver.Config.PeerImages (--rabbitmq-image, --activemq-image).
	PeerImages map[string]string
	// SendTimeout bounds a send's wait for its receipt. Default 5s.
	SendTimeout time.Duration
	// Progress shows the run; nil shows nothing.
	Progress *Progress
}

// Outcome is one scenario's run.
type Outcome struct {
	Scenario string
	// Dir is the scenario's output folder.
	Dir    string
	Result *result.Result
	// Skipped, when set, says why the scenario could not be measured (a
	// fault the driver does not support); its expectations do not count.
	Skipped string
}

// ErrEnvironment wraps failures of the machine or the topology (a broker
// that does not start, a driver that cannot be set up), as opposed to an
// expectation that fails.
var ErrEnvironment = errors.New("environment")

// NewRunID is a run id from the time: "20060102-150405".
func NewRunID(t time.Time) string { return t.UTC().Format("20060102-150405") }

// Process is the history's process name of the fault injector.
const Process = "nemesis"

// Run runs sc once. It returns an error wrapping ErrEnvironment when the
// run could not happen as planned; a finished run's expectations are in
// the Outcome's Result. Everything it started is stopped before it
// returns, also when ctx is cancelled.
func Run(ctx context.Context, sc *scenario.Scenario, opt Options) (*Outcome, error) {
	if opt.RunID == "" {
		opt.RunID = NewRunID(time.Now())
	}
	if !scenario.ValidName(opt.RunID) {
		return nil, fmt.Errorf("runner: run id %q: expected %s (it names a folder inside %s)", opt.RunID, scenario.NameRule, opt.Out)
	}
	if opt.Driver == "" {
		opt.Driver = "local"
	}
	opt.SendTimeout = max(opt.SendTimeout, 0)
	if opt.SendTimeout == 0 {
		opt.SendTimeout = 5 * time.Second
	}
	if opt.Progress == nil {
		opt.Progress = NewProgress(nil, false)
	}
	seed := sc.Seed
	if opt.SeedSet {
		seed = opt.Seed
	}
	plan, err := sc.Resolve(seed)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opt.Out, opt.RunID, sc.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runner: %w: %w", ErrEnvironment, err)
	}
	if err := plan.WriteFile(filepath.Join(dir, scenario.PlanFile)); err != nil {
		return nil, err
	}
	open := opt.NewDriver
	if open == nil && opt.Driver == drivers.Auto {
		open = func(ctx context.Context, cfg driver.Config) (driver.Driver, error) {
			d, name, why, err := drivers.OpenAuto(ctx, cfg)
			if name != "" {
				opt.Progress.Logf("%s: driver %s (%s)", sc.Name, name, why)
			}
			return d, err
		}
	}
	if open == nil {
		if _, _, err := drivers.Choose(ctx, opt.Driver, opt.BrokerImage); err != nil {
			return nil, fmt.Errorf("runner: %s: %w: %w", sc.Name, ErrEnvironment, err)
		}
		open = func(ctx context.Context, cfg driver.Config) (driver.Driver, error) {
			return drivers.Open(ctx, opt.Driver, cfg)
		}
	}
	drv, err := open(ctx, driver.Config{
		Topology: sc.Topology, RunID: opt.RunID, Scenario: sc.Name,
		Dir: dir, StateDir: opt.Out, BrokerBin: opt.BrokerBin, BrokerImage: opt.BrokerImage, DatabaseImages: opt.DatabaseImages, PeerImages: opt.PeerImages, ClientSite: sc.Workload.Site,
		PowerCutNodes: PowerCutNodes(plan), FaultFSNodes: FaultFSNodes(plan), WipeDatabases: WipeDatabases(plan), Writeback: sc.Writeback, Needs: Needs(sc),
		Log: func(format string, args ...any) { opt.Progress.Logf("  "+sc.Name+": "+format, args...) },
	})
	if drv != nil {
		defer drv.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("runner: %s: %w: %w", sc.Name, ErrEnvironment, err)
	}
	r := &run{sc: sc, plan: plan, opt: opt, drv: drv, dir: dir, out: &Outcome{Scenario: sc.Name, Dir: dir}}
	return r.do(ctx)
}

// Needs are what sc asks of a driver beyond its interface (driver.Config.Needs).
func Needs(sc *scenario.Scenario) []string {
	var needs []string
	if len(sc.Exits) > 0 {
		needs = append(needs, driver.NeedExitStatus)
	}
	if len(sc.Workload.Recovery.RestartArgs) > 0 {
		needs = append(needs, driver.NeedRestartArgs)
	}
	for _, f := range sc.Faults {
		if f.Kind == scenario.DBDataLost {
			needs = append(needs, driver.NeedDatabaseWipe)
			break
		}
	}
	return needs
}

// PowerCutNodes are the nodes a power-cut step of plan targets, and those
// a machine-lost moves the disks of (move_disks_to: the lost machine's
// unsynced writes are lost with it), in plan order: the nodes a driver
// must be able to cut the power of (the local driver serves their data
// through lazyfs).
func PowerCutNodes(plan *scenario.Plan) []string {
	var nodes []string
	for _, st := range plan.Steps {
		cut := st.Kind == scenario.PowerCut || (st.Kind == scenario.MachineLost && st.MoveDisksTo != "")
		if cut && !slices.Contains(nodes, st.Target.Node) {
			nodes = append(nodes, st.Target.Node)
		}
	}
	return nodes
}

// WipeDatabases are the database servers a db-data-lost step of plan
// targets, in plan order, each once.
func WipeDatabases(plan *scenario.Plan) []string {
	var dbs []string
	for _, st := range plan.Steps {
		if st.Kind == scenario.DBDataLost && !slices.Contains(dbs, st.Target.Database) {
			dbs = append(dbs, st.Target.Database)
		}
	}
	return dbs
}

// FaultFSNodes are the nodes whose data a step of plan needs on a
// fault-injecting filesystem: the nodes reaching the disk of a disk-error
// or disk-stall, and the target of a torn power-cut, in plan order.
func FaultFSNodes(plan *scenario.Plan) []string {
	var nodes []string
	add := func(ns ...string) {
		for _, n := range ns {
			if !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
	}
	for _, st := range plan.Steps {
		switch {
		case st.Kind == scenario.PowerCut && st.Torn:
			add(st.Target.Node)
		case st.Kind == scenario.DiskError || st.Kind == scenario.DiskStall:
			for _, dk := range plan.Scenario.Topology.Disks {
				if dk.Name == st.Target.Disk {
					add(dk.Attached()...)
				}
			}
		}
	}
	return nodes
}

// run is the state of one scenario's run.
type run struct {
	sc   *scenario.Scenario
	plan *scenario.Plan
	opt  Options
	drv  driver.Driver
	dir  string
	h    *history.Writer
	out  *Outcome

	mu      sync.Mutex
	notes   []string
	records []fault.Record
}

func (r *run) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
	r.opt.Progress.Logf("  %s: %s", r.sc.Name, s)
}

func (r *run) skip(reason string) {
	r.mu.Lock()
	if r.out.Skipped == "" {
		r.out.Skipped = reason
	}
	r.mu.Unlock()
	r.note("skipped: %s", reason)
}

func (r *run) do(ctx context.Context) (*Outcome, error) {
	wl := r.sc.Workload
	p := r.opt.Progress
	p.Logf("%s: starting %d node(s) in %s", r.sc.Name, len(r.sc.Topology.Nodes), r.dir)
	for _, n := range r.nodes() {
		if r.spare(n) {
			continue // started when it takes a lost node's disks
		}
		if err := r.drv.Start(ctx, n); err != nil {
			return nil, fmt.Errorf("runner: %s: %w: %w", r.sc.Name, ErrEnvironment, err)
		}
	}
	h, err := history.Create(filepath.Join(r.dir, result.HistoryFile))
	if err != nil {
		return nil, fmt.Errorf("runner: %w: %w", ErrEnvironment, err)
	}
	r.h = h
	closeHistory := sync.OnceValue(h.Close)
	defer closeHistory()

	fo, err := r.failover()
	if err != nil {
		return nil, err
	}
	prods, cons, err := r.clients(fo)
	if err != nil {
		return nil, err
	}

	// Consumers first (after their start delay), then producers.
	cctx, cstop := context.WithCancel(ctx)
	defer cstop()
	pctx, pstop := context.WithCancel(ctx)
	defer pstop()
	var cwg, pwg sync.WaitGroup
	for _, c := range cons {
		cwg.Add(1)
		go func(c *workload.Consumer) {
			defer cwg.Done()
			if d := wl.Consumers.StartDelay.D(); d > 0 {
				select {
				case <-time.After(d):
				case <-cctx.Done():
					return
				}
			}
			if err := c.Run(cctx); err != nil {
				r.note("consumer: %v", err)
			}
		}(c)
	}
	t0 := time.Now()
	h.Add(history.Event{Time: t0, Type: history.SendStart, Process: Process})
	for _, pr := range prods {
		pwg.Add(1)
		go func(pr *workload.Producer) {
			defer pwg.Done()
			if err := pr.Run(pctx); err != nil {
				r.note("producer: %v", err)
			}
		}(pr)
	}
	prodDone := make(chan struct{})
	go func() { pwg.Wait(); close(prodDone) }()

	// Progress until the run ends.
	dur := wl.Duration.D()
	total := dur + wl.Recovery.Wait.D() + wl.Recovery.Drain.D()
	phase := &phaseText{s: "send"}
	stopProgress := make(chan struct{})
	var progWG sync.WaitGroup
	progWG.Add(1)
	go func() {
		defer progWG.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
			}
			var acked, recv uint64
			for _, pr := range prods {
				acked += pr.Stats().Acked
			}
			for _, c := range cons {
				recv += c.Stats().Received
			}
			el := time.Since(t0)
			p.Update(r.sc.Name, float64(el)/float64(total),
				fmt.Sprintf("%s %s acked %d received %d", phase.get(), el.Truncate(100*time.Millisecond), acked, recv))
		}
	}()
	defer func() {
		select {
		case <-stopProgress:
		default:
			close(stopProgress)
		}
		progWG.Wait()
		p.Done()
	}()

	// The fault timeline runs beside the send phase.
	recovery := make(chan struct{})
	tlDone := make(chan struct{})
	go func() { r.playFaults(ctx, t0, recovery); close(tlDone) }()

	select {
	case <-time.After(time.Until(t0.Add(dur))):
	case <-ctx.Done():
	}
	h.Add(history.Event{Type: history.SendEnd, Process: Process})
	// Recovery: heal what heals, repair what the scenario repairs, wait,
	// let the producers finish their last messages, drain.
	phase.set("recovery")
	close(recovery)
	<-tlDone
	if ctx.Err() == nil {
		r.repair(ctx)
		select {
		case <-time.After(wl.Recovery.Wait.D()):
		case <-ctx.Done():
		}
	}
	phase.set("drain")
	drainEnd := time.Now().Add(wl.Recovery.Drain.D())
	select {
	case <-prodDone:
	case <-time.After(time.Until(drainEnd)):
		r.note("producers still retrying when the drain ended")
	case <-ctx.Done():
	}
	pstop()
	if !waitBounded(prodDone, clientStopGrace) {
		r.note("producers did not stop within %s after the drain (a client hang); their last sends have no outcome in the history", clientStopGrace)
	}
	if ctx.Err() == nil {
		if !workload.WaitQuiet(ctx, wl.Recovery.Quiet.D(), time.Until(drainEnd), cons...) {
			r.note("drain: consumers still busy or disconnected after %s", wl.Recovery.Drain)
		}
		r.noteStall(ctx)
	}
	cstop()
	consDone := make(chan struct{})
	go func() { cwg.Wait(); close(consDone) }()
	if !waitBounded(consDone, clientStopGrace) {
		r.note("consumers did not stop within %s after the drain (a client hang)", clientStopGrace)
	}
	if ctx.Err() == nil {
		r.finalDrain(ctx, fo)
	}
	if err := closeHistory(); err != nil {
		return nil, fmt.Errorf("runner: %w: %w", ErrEnvironment, err)
	}
	info := r.drv.Info()
	if err := r.drv.Close(); err != nil {
		r.note("cleanup: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runner: %s: interrupted: %w", r.sc.Name, err)
	}
	return r.finish(ctx, info)
}

// clientStopGrace bounds the wait for producers and consumers to stop once
// told to: a client stuck inside its STOMP library must not hang the run.
const clientStopGrace = 30 * time.Second

// waitBounded waits for done at most d and says whether it came.
func waitBounded[T any](done <-chan T, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

type phaseText struct {
	mu sync.Mutex
	s  string
}

func (p *phaseText) set(s string) { p.mu.Lock(); p.s = s; p.mu.Unlock() }
func (p *phaseText) get() string  { p.mu.Lock(); defer p.mu.Unlock(); return p.s }

// nodes are the topology's node names in its order.
func (r *run) nodes() []string {
	var names []string
	for _, n := range r.sc.Topology.Nodes {
		names = append(names, n.Name)
	}
	return names
}

// failover is the clients' broker list: the workload's connect list, or
// every node, each through its proxy.
func (r *run) failover() (workload.Failover, error) {
	names := r.sc.Workload.Connect
	if len(names) == 0 {
		names = r.nodes()
	}
	var fo workload.Failover
	for _, n := range names {
		addr, err := r.drv.ClientAddr(n)
		if err != nil {
			return fo, fmt.Errorf("runner: %s: %w: %w", r.sc.Name, ErrEnvironment, err)
		}
		fo.Endpoints = append(fo.Endpoints, workload.Endpoint{Name: n, Addr: addr})
	}
	var err error
	if fo.Protocol, err = Protocol(r.sc); err != nil {
		return fo, fmt.Errorf("runner: %s: %w: %w", r.sc.Name, ErrEnvironment, err)
	}
	fo.ConnectTimeout = 2 * time.Second
	fo.InitialBackoff = 50 * time.Millisecond
	fo.MaxBackoff = 500 * time.Millisecond
	return fo, nil
}

// Protocol is the client protocol of sc's workload: STOMP, NATS
// JetStream with one stream replica per nats node, or AMQP 0-9-1 declaring
// queues of the rabbitmq nodes' store (classic or quorum).
func Protocol(sc *scenario.Scenario) (workload.Protocol, error) {
	switch sc.Workload.Protocol {
	case scenario.ProtocolAMQP:
		qt := amqp.Classic
		for _, nd := range sc.Topology.Nodes {
			if nd.Broker.Kind == scenario.RabbitMQ && nd.Broker.Store != "" {
				qt = nd.Broker.Store
				break
			}
		}
		return amqp.Protocol{QueueType: qt}, nil
	case scenario.ProtocolNATS:
		n := 0
		for _, nd := range sc.Topology.Nodes {
			if nd.Broker.Kind == scenario.NATS {
				n++
			}
		}
		return jetstream.Protocol{Replicas: max(n, 1)}, nil
	}
	return workload.STOMP{}, nil
}

// clients makes the producers and consumers; producer i and consumer j
// use destination i (j) modulo the number of destinations.
func (r *run) clients(fo workload.Failover) ([]*workload.Producer, []*workload.Consumer, error) {
	wl := r.sc.Workload
	dests := r.dests()
	var prods []*workload.Producer
	for i := 0; i < wl.Producers.Count; i++ {
		pr, err := workload.NewProducer(workload.ProducerConfig{
			ID: "p" + strconv.Itoa(i), Run: r.opt.RunID, Dest: dests[i%len(dests)],
			Size: int(wl.Producers.Size), Rate: wl.Producers.Rate, NonPersistent: !wl.Producers.Persistent,
			TxSize: wl.Producers.Transactions, Duration: wl.Duration.D(), MaxMessages: uint64(max(wl.Producers.MaxMessages, 0)),
			SendTimeout: r.opt.SendTimeout, Failover: fo,
		}, r.h)
		if err != nil {
			return nil, nil, err
		}
		prods = append(prods, pr)
	}
	var cons []*workload.Consumer
	for j := 0; j < wl.Consumers.Count; j++ {
		c, err := workload.NewConsumer(workload.ConsumerConfig{
			ID: "c" + strconv.Itoa(j), Dest: dests[j%len(dests)], Ack: string(wl.Consumers.Ack),
			Prefetch: wl.Consumers.Prefetch, HeartBeat: 2 * time.Second, Failover: fo,
		}, r.h)
		if err != nil {
			return nil, nil, err
		}
		cons = append(cons, c)
	}
	return prods, cons, nil
}

// repairSet is the set of nodes and databases the recovery phase brings
// back.
func (r *run) repairSet() map[string]bool {
	rec := r.sc.Workload.Recovery
	set := map[string]bool{}
	for _, n := range r.nodes() {
		if rec.RepairAll {
			set[n] = true
		}
	}
	for _, db := range r.sc.Topology.Databases {
		for _, sv := range db.Servers() {
			if rec.RepairAll {
				set[sv.Name] = true
			}
		}
	}
	for _, n := range rec.Repair {
		set[n] = true
	}
	return set
}

// spare reports whether node is a spare: started only by the machine-lost
// that moves disks to it.
func (r *run) spare(node string) bool {
	for _, n := range r.sc.Topology.Nodes {
		if n.Name == node {
			return n.Spare
		}
	}
	return false
}

// movedAway reports whether a machine-lost of the plan moves node's disks
// to a spare: the node is gone for good.
func (r *run) movedAway(node string) bool {
	for _, st := range r.plan.Steps {
		if st.Kind == scenario.MachineLost && st.MoveDisksTo != "" && st.Target.Node == node {
			return true
		}
	}
	return false
}

// repair starts every node of the repair set that is down, except spares
// (their machine-lost's recovery starts them) and nodes whose disks moved
// to a spare.
func (r *run) repair(ctx context.Context) {
	set := r.repairSet()
	for _, n := range r.nodes() {
		if !set[n] || r.spare(n) || r.movedAway(n) || r.drv.Running(n) {
			continue
		}
		if args, ok := r.sc.Workload.Recovery.RestartArgs[n]; ok {
			as, ok := r.drv.(driver.ArgsStarter)
			if !ok {
				r.skip(fmt.Sprintf("recovery restart_args of %s: unsupported by the %s driver", n, r.drv.Info().Name))
				continue
			}
			r.note("repair %s: started with %v (recovery restart_args); its log says what they did", n, args)
			if err := as.StartWithArgs(ctx, n, args); err != nil {
				r.note("repair %s: %v", n, err)
			}
			continue
		}
		if err := r.drv.Start(ctx, n); err != nil {
			r.note("repair %s: %v", n, err)
		}
	}
}

// playFaults injects the plan's steps at their times until the recovery
// begins, and recovers each when its window ends or the recovery begins.
func (r *run) playFaults(ctx context.Context, t0 time.Time, recovery <-chan struct{}) {
	var wg sync.WaitGroup
	defer wg.Wait()
	dur := r.sc.Workload.Duration
	for _, st := range r.plan.Steps {
		if st.At >= dur {
			r.note("fault %q at %s is not played: the send phase ends at %s", st.Name(), st.At, dur)
			continue
		}
		select {
		case <-time.After(time.Until(t0.Add(st.At.D()))):
		case <-recovery:
			return
		case <-ctx.Done():
			return
		}
		f, err := fault.FromStep(st, r.sc.Topology)
		if err != nil {
			r.note("fault %q: %v", st.Name(), err)
			continue
		}
		idx := r.startRecord(f, st)
		r.h.Add(history.Event{Type: history.FaultStart, Process: Process, Fault: f.Name()})
		r.opt.Progress.Logf("  %s: %s at %s", r.sc.Name, f.Name(), time.Since(t0).Truncate(time.Millisecond))
		if err := f.Inject(ctx, r.drv); err != nil {
			r.h.Add(history.Event{Type: history.FaultEnd, Process: Process, Fault: f.Name(), Error: err.Error()})
			r.endRecord(idx, err)
			if errors.Is(err, driver.ErrUnsupported) {
				r.skip(err.Error())
			} else {
				r.note("fault %q: %v", f.Name(), err)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.heal(ctx, t0, st, f, idx, recovery)
		}()
	}
}

// heal recovers f when its window ends; a fault still open when the
// recovery begins is recovered then, except a node-down fault whose nodes
// the scenario does not repair: it stays open.
func (r *run) heal(ctx context.Context, t0 time.Time, st scenario.Step, f fault.Fault, idx int, recovery <-chan struct{}) {
	var timer <-chan time.Time
	if at, ok := st.Heal(); ok {
		timer = time.After(time.Until(t0.Add(at)))
	}
	select {
	case <-timer:
	case <-recovery:
		if nd, ok := f.(fault.NodeDown); ok {
			set := r.repairSet()
			for _, n := range nd.Nodes() {
				if !set[n] {
					return
				}
			}
		}
	case <-ctx.Done():
		return
	}
	err := f.Recover(ctx, r.drv)
	ev := history.Event{Type: history.FaultEnd, Process: Process, Fault: f.Name()}
	if err != nil {
		ev.Error = err.Error()
		r.note("recover %q: %v", f.Name(), err)
	}
	r.h.Add(ev)
	r.endRecord(idx, err)
	r.opt.Progress.Logf("  %s: %s recovered", r.sc.Name, f.Name())
}

func (r *run) startRecord(f fault.Fault, st scenario.Step) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, fault.Record{Name: f.Name(), Kind: string(st.Kind), Start: time.Now().UTC()})
	return len(r.records) - 1
}

func (r *run) endRecord(i int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records[i].End = time.Now().UTC()
	if err != nil {
		r.records[i].Error = err.Error()
	}
}

// finish runs the checker and writes result.json and summary.md.
func (r *run) finish(ctx context.Context, info driver.Info) (*Outcome, error) {
	events, err := history.ReadFile(filepath.Join(r.dir, result.HistoryFile))
	if err != nil {
		return nil, err
	}
	env := result.Collect(ctx)
	env.Driver = info.Name
	env.Writeback = info.Writeback
	if len(r.sc.Topology.Nodes) > 0 {
		env.Broker = info.Brokers[r.sc.Topology.Nodes[0].Name]
	}
	res := result.New(r.plan, checker.Check(events, checker.Options{}), env)
	res.Run = r.opt.RunID
	var exits []result.NodeExit
	er, known := r.drv.(driver.ExitReporter)
	if known {
		for _, x := range er.Exits() {
			exits = append(exits, result.NodeExit{Node: x.Node, Status: x.Status, Signal: x.Signal, At: x.At, ByHarness: x.ByHarness})
		}
	}
	res.CheckExits(r.sc.Exits, exits, known)
	r.mu.Lock()
	res.Notes = append(append(res.Notes, info.Notes...), r.notes...)
	for _, rec := range r.records {
		if rec.Error != "" {
			res.Notes = append(res.Notes, fmt.Sprintf("fault %s: %s", rec.Name, rec.Error))
		}
	}
	r.mu.Unlock()
	if err := res.WriteFile(filepath.Join(r.dir, result.FileName)); err != nil {
		return nil, err
	}
	if err := res.WriteSummary(filepath.Join(r.dir, result.SummaryFile)); err != nil {
		return nil, err
	}
	r.out.Result = res
	return r.out, nil
}
