package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lossbench/lossbench/chaos/internal/osutil"
)

// Target is one broker configuration of the matrix.
type Target struct {
	// Name labels the row, e.g. "journal-batch".
	Name string `json:"name"`
	// Args are refbroker's flags beyond --listen, --admin and --data;
	// {dir} in them is the measurement's folder (a second --data
	// {dir}/data2 mirrors the journal there).
	Args []string `json:"args"`
	// DB, when set, is a database server kind (postgres, mariadb, or a
	// replicated PostgreSQL: PostgresSyncStandby, PostgresApplyStandby,
	// PostgresAsyncStandby)
	// the bench starts itself; each cell gets a fresh database on it, passed
	// to refbroker with --db-driver and --dsn (to a peer, in its own
	// configuration).
	DB string `json:"db,omitempty"`
	// DBs, instead of DB, are several database servers for refbroker's
	// replicated jdbc store (C-JDBC): each a kind, optionally with a
	// suffix naming a server of its own ("postgres", "postgres#2": two
	// servers). Each cell gets a fresh database on each, passed as one
	// --db-driver and --dsn per database.
	DBs []string `json:"dbs,omitempty"`
	// Peer, when set, names a peer broker (PeerActiveMQ, PeerRabbitMQ)
	// the bench starts instead of refbroker; Args are then unused and
	// PeerConfig picks its configuration (ActiveMQConfig.Store).
	Peer       string `json:"peer,omitempty"`
	PeerConfig string `json:"peer_config,omitempty"`
	// About says in a line what a peer target runs (for --help).
	About string `json:"-"`
	// Replica, when set, makes the target a replicated pair
	// (ReplicatedTargets): the --replica-ack mode; RTT is the replication
	// link's round trip.
	Replica string        `json:"replica_ack,omitempty"`
	RTT     time.Duration `json:"link_rtt_ns,omitempty"`
	// Standby, when set, makes the target a shared-storage pair
	// (refbroker --shared): a second refbroker with the same Args on the
	// same data directory stands by, watching the lease file, while the
	// first serves the load.
	Standby bool `json:"standby,omitempty"`
}

// DefaultTargets are refbroker's stores of issue 2, each fsync policy.
func DefaultTargets() []Target {
	return []Target{
		{Name: "memory", Args: []string{"--store", "memory"}},
		{Name: "journal-always", Args: []string{"--store", "journal", "--fsync", "always"}},
		{Name: "journal-batch", Args: []string{"--store", "journal", "--fsync", "batch"}},
		// The mirrored journal on two directories of the same disk: what
		// writing and fdatasyncing two copies in parallel costs, not what
		// two disks would.
		{Name: "journal-mirror2", Args: []string{"--store", "journal", "--fsync", "batch", "--data", "{dir}/data2"}},
		{Name: "journal-interval-10ms", Args: []string{"--store", "journal", "--fsync", "interval=10ms"}},
		{Name: "journal-never", Args: []string{"--store", "journal", "--fsync", "never"}},
		{Name: "jdbc-sqlite", Args: []string{"--store", "jdbc", "--db-driver", "sqlite"}},
		{Name: "jdbc-postgres", Args: []string{"--store", "jdbc"}, DB: "postgres"},
		{Name: "jdbc-postgres-sync-standby", Args: []string{"--store", "jdbc"}, DB: PostgresSyncStandby},
		{Name: "jdbc-postgres-remote-apply-standby", Args: []string{"--store", "jdbc"}, DB: PostgresApplyStandby},
		{Name: "jdbc-postgres-async-standby", Args: []string{"--store", "jdbc"}, DB: PostgresAsyncStandby},
		{Name: "jdbc-mariadb", Args: []string{"--store", "jdbc"}, DB: "mariadb"},
		{Name: "journaled-jdbc-postgres", Args: []string{"--store", "journaled-jdbc", "--fsync", "batch"}, DB: "postgres"},
		{Name: "cjdbc-2postgres-all", Args: []string{"--store", "jdbc", "--write-policy", "all"}, DBs: []string{"postgres", "postgres#2"}},
		{Name: "cjdbc-2postgres-majority", Args: []string{"--store", "jdbc", "--write-policy", "majority"}, DBs: []string{"postgres", "postgres#2"}},
		{Name: "cjdbc-2postgres-first", Args: []string{"--store", "jdbc", "--write-policy", "first"}, DBs: []string{"postgres", "postgres#2"}},
		// Shared storage: journal-batch holding the lease file of its data
		// directory, renewed every 500 ms, with a standby attached (the
		// lease timings of scenarios/matrix/shared-store-*).
		{Name: "shared-store", Args: []string{"--store", "journal", "--fsync", "batch", "--shared", "--lease-ttl", "3s", "--lease-renew", "500ms"}, Standby: true},
	}
}

// Matrix is a set of cells measured side by side in one run.
type Matrix struct {
	BrokerBin string
	Targets   []Target
	Producers []int
	Sizes     []int
	Warmup    time.Duration
	Duration  time.Duration
	Repeat    int
	// Reference names the target every other is compared with.
	Reference string
	// Callgrind runs each refbroker cell's broker under valgrind's
	// callgrind, for its instructions per message (Figures.InstrPerMsg):
	// single refbroker targets only (no peer, replica or standby).
	Callgrind bool
	// WorkDir holds each broker's data directory and log.
	WorkDir string
	Logf    func(format string, args ...any)

	dbs *databases
}

// Cell is one (target, producers, size) measurement, the median of its
// repeats by MsgsPerSec, with the spread beside it.
type Cell struct {
	Target string `json:"target"`
	Figures
	Repeats []float64 `json:"repeats_msgs_per_sec"`
	// RatioToReference is MsgsPerSec over the reference target's in the same
	// (producers, size) cell of this run.
	RatioToReference float64 `json:"ratio_to_reference"`
	// P99RatioToReference is P99 over the reference target's in the same
	// cell of this run (above 1: slower confirmations).
	P99RatioToReference float64 `json:"p99_ratio_to_reference"`
	// DiskFraction is MsgsPerSec over what the disk does for this
	// producer count (one fdatasync per message for 1 producer, 16 writes
	// per fdatasync otherwise), an upper bound for a durable store.
	DiskFraction float64 `json:"disk_fraction"`
	// Limit is the ceiling of a refbroker journal cell in msg/s, computed
	// from this run's own figures (see CellLimit); LimitFraction is
	// MsgsPerSec over it. Zero when the run has no journal-never cell of
	// the same producers and size, or the target is not a journal. The
	// round trip comes from journal-never with the fewest producers of
	// the size (give --producers 1 for the unloaded one).
	Limit         float64 `json:"limit_msgs_per_sec,omitempty"`
	LimitFraction float64 `json:"limit_fraction,omitempty"`
}

// NeverTarget is the journal target that never syncs: its round trip is
// the protocol's and the CPU's share of every journal cell's limit.
const NeverTarget = "journal-never"

// CellLimit is the most msg/s a journal with fsync policy fsync can
// acknowledge with producers producers, each waiting for its RECEIPT. The
// figures are the run's own: tsync is one fdatasync in seconds, never the
// journal-never msg/s of the same producers and size (what the CPU allows
// with no sync at all), rtt the journal-never round trip with one
// producer in seconds (1/msg/s). Each producer's message needs a round
// trip and an fdatasync after it arrives, so a producer sends at most
// 1/(tsync + rtt) a second; at best one sync covers every producer's
// message (batch); under always each message has its own sync, at most
// 1/tsync in all; interval and never wait for no sync. With 1 producer
// both syncing policies give 1 / (tsync + rtt), issue 16's limit. It
// returns 0 for an unknown policy or missing figures.
func CellLimit(fsync string, producers int, tsync, never, rtt float64) float64 {
	if never <= 0 || producers < 1 {
		return 0
	}
	switch {
	case fsync == "never" || strings.HasPrefix(fsync, "interval"):
		return never
	case tsync <= 0 || rtt <= 0:
		return 0
	}
	limit := min(never, float64(producers)/(tsync+rtt))
	switch fsync {
	case "batch":
		return limit
	case "always":
		return min(limit, 1/tsync)
	}
	return 0
}

// journalPolicy returns the --fsync policy of a refbroker journal target
// (batch when not given, refbroker's default), or "" for any other target.
func journalPolicy(tg Target) string {
	if tg.Peer != "" || tg.Replica != "" {
		return ""
	}
	store, fsync := "", "batch"
	for i := 0; i+1 < len(tg.Args); i++ {
		switch tg.Args[i] {
		case "--store":
			store = tg.Args[i+1]
		case "--fsync":
			fsync = tg.Args[i+1]
		}
	}
	if store != "journal" {
		return ""
	}
	return fsync
}

// Report is what `lossbench bench` writes to bench.json.
type Report struct {
	Started   time.Time   `json:"started"`
	Reference string      `json:"reference"`
	Disk      DiskFigures `json:"disk"`
	Databases []DBFigures `json:"databases,omitempty"`
	// Peers are the peer brokers measured, with their package versions.
	Peers []PeerInfo `json:"peers,omitempty"`
	Cells []Cell     `json:"cells"`
}

// PeerInfo names a peer broker measured in a run and its version: its
// Debian package's, or for nats the server's module and version.
type PeerInfo struct {
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

// Run measures every cell of m, starting a fresh broker per measurement.
func (m *Matrix) Run(ctx context.Context) (*Report, error) {
	logf := m.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := &Report{Started: time.Now().UTC(), Reference: m.Reference}
	// A peer asked for and not installed is an error before anything is
	// measured, never a silently missing row.
	seen := map[string]bool{}
	for _, tg := range m.Targets {
		if err := tg.Available(); err != nil {
			return nil, fmt.Errorf("target %s: %w", tg.Name, err)
		}
		if tg.Peer != "" && !seen[tg.Peer] {
			seen[tg.Peer] = true
			rep.Peers = append(rep.Peers, PeerInfo{Kind: tg.Peer, Version: PeerVersion(tg.Peer)})
		}
	}
	if m.Callgrind {
		if err := CallgrindAvailable(); err != nil {
			return nil, fmt.Errorf("callgrind: %w", err)
		}
		for _, tg := range m.Targets {
			if tg.Peer != "" || tg.Replica != "" || tg.Standby {
				return nil, fmt.Errorf("target %s: callgrind measures one refbroker; this target runs more than one process", tg.Name)
			}
		}
	}
	disk, err := ProbeDisk(m.WorkDir, 2*time.Second)
	if err != nil {
		return nil, err
	}
	rep.Disk = disk
	logf("disk %s: %.0f fdatasync/s (4 KiB), %.0f writes/s at 16 per fdatasync", m.WorkDir, disk.SyncsPerSec, disk.Grouped16PerSec)
	m.dbs = &databases{dir: m.WorkDir, logf: logf}
	defer m.dbs.close()
	probed := map[string]bool{}
	for _, tg := range m.Targets {
		if tg.DB == "" || probed[tg.DB] {
			continue
		}
		probed[tg.DB] = true
		df, err := m.dbs.probe(ctx, tg.DB, 2*time.Second)
		if err != nil {
			return rep, err
		}
		rep.Databases = append(rep.Databases, df)
		logf("%s: %.0f commits/s (1 KiB single-row inserts) with 1 client, %.0f with 16", tg.DB, df.Commits1, df.Commits16)
	}
	repeat := max(m.Repeat, 1)
	for _, size := range m.Sizes {
		for _, prod := range m.Producers {
			for _, tg := range m.Targets {
				c := Cell{Target: tg.Name}
				var runs []Figures
				for r := 0; r < repeat; r++ {
					f, err := m.one(ctx, tg, prod, size, r)
					if err != nil {
						return rep, fmt.Errorf("%s, %d producers, %d B, repeat %d: %w", tg.Name, prod, size, r+1, err)
					}
					runs = append(runs, f)
					c.Repeats = append(c.Repeats, f.MsgsPerSec)
					logf("%-24s producers=%-3d size=%-6d %9.0f msg/s  acked %9.0f/s  p50 %6.2f ms  p99 %6.2f ms  backlog %d",
						tg.Name, prod, size, f.MsgsPerSec, f.AckedPerSec, f.P50, f.P99, f.Backlog)
				}
				sort.Slice(runs, func(i, j int) bool { return runs[i].MsgsPerSec < runs[j].MsgsPerSec })
				c.Figures = runs[len(runs)/2]
				limit := disk.SyncsPerSec
				if prod > 1 {
					limit = disk.Grouped16PerSec
				}
				if limit > 0 {
					c.DiskFraction = c.MsgsPerSec / limit
				}
				rep.Cells = append(rep.Cells, c)
			}
		}
	}
	rep.compare(m.Targets, m.Reference)
	return rep, nil
}

// compare sets each cell's ratio to the reference target and its limit,
// from the other cells of the report.
func (rep *Report) compare(targets []Target, reference string) {
	ref := map[[2]int]Figures{}
	never := map[[2]int]float64{}
	for _, c := range rep.Cells {
		if c.Target == reference {
			ref[[2]int{c.Producers, c.Size}] = c.Figures
		}
		if c.Target == NeverTarget {
			never[[2]int{c.Producers, c.Size}] = c.MsgsPerSec
		}
	}
	// The round trip with no sync: journal-never with the fewest
	// producers of each size (1 in any run that has it), producers/msg/s.
	rtt := map[int]float64{}
	fewest := map[int]int{}
	for _, c := range rep.Cells {
		if c.Target == NeverTarget && c.MsgsPerSec > 0 && (fewest[c.Size] == 0 || c.Producers < fewest[c.Size]) {
			fewest[c.Size] = c.Producers
			rtt[c.Size] = float64(c.Producers) / c.MsgsPerSec
		}
	}
	policy := map[string]string{}
	for _, tg := range targets {
		policy[tg.Name] = journalPolicy(tg)
	}
	for i := range rep.Cells {
		c := &rep.Cells[i]
		k := [2]int{c.Producers, c.Size}
		r := ref[k]
		if r.P99 > 0 {
			c.P99RatioToReference = c.P99 / r.P99
		}
		if r.MsgsPerSec > 0 {
			c.RatioToReference = c.MsgsPerSec / r.MsgsPerSec
		}
		// The disk as the broker saw it during the cell: on a shared
		// disk the probe's rate, seconds or minutes earlier, can be off
		// by several times. The probe stands in where the broker gave
		// no figure.
		tsync := c.FsyncMs / 1e3
		if tsync <= 0 && rep.Disk.SyncsPerSec > 0 {
			tsync = 1 / rep.Disk.SyncsPerSec
		}
		if pol := policy[c.Target]; pol != "" {
			c.Limit = CellLimit(pol, c.Producers, tsync, never[k], rtt[c.Size])
			if c.Limit > 0 {
				c.LimitFraction = c.MsgsPerSec / c.Limit
			}
		}
	}
}

func (m *Matrix) one(ctx context.Context, tg Target, producers, size, rep int) (Figures, error) {
	dir := filepath.Join(m.WorkDir, fmt.Sprintf("%s-p%d-s%d-r%d", tg.Name, producers, size, rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Figures{}, err
	}
	if tg.Peer != "" {
		return m.peerCell(ctx, tg, dir, producers, size)
	}
	if tg.Replica != "" {
		return m.replicatedCell(ctx, tg, dir, producers, size)
	}
	defer os.RemoveAll(filepath.Join(dir, "data"))
	args := tg.Args
	dbs := tg.DBs
	if tg.DB != "" {
		dbs = []string{tg.DB}
	}
	for _, db := range dbs {
		extra, err := m.dbs.fresh(ctx, db)
		if err != nil {
			return Figures{}, err
		}
		args = append(append([]string(nil), args...), extra...)
	}
	var l launch
	if m.Callgrind {
		l = callgrindLaunch(dir)
	}
	b, err := startReady(ctx, l, m.BrokerBin, dir, args)
	if err != nil {
		return Figures{}, err
	}
	var cg *counting
	if m.Callgrind {
		if cg, err = startCounting(b, dir); err != nil {
			b.Kill()
			return Figures{}, fmt.Errorf("%s: %w", tg.Name, err)
		}
	}
	if tg.Standby {
		sb, err := m.startStandby(ctx, dir, args)
		if err != nil {
			b.Kill()
			return Figures{}, fmt.Errorf("%s: %w", tg.Name, err)
		}
		defer sb.Kill()
	}
	cpu0, cpuErr := b.CPUSeconds()
	f, runErr := Run(ctx, Load{
		Addr: b.STOMP, Dest: "/queue/bench", Producers: producers, Size: size,
		Warmup: m.Warmup, Duration: m.Duration, Persistent: true,
	})
	cpu1, cpuErr2 := b.CPUSeconds()
	if mets, err := b.SaveMetrics(filepath.Join(dir, "metrics.prom")); err == nil {
		f.MsgsPerSync = perSync(mets)
		if n := mets["refbroker_store_fsyncs_total"]; n > 0 {
			f.FsyncMs = mets["refbroker_store_fsync_seconds_total"] / n * 1e3
		}
		if n := mets[messagesIn]; n > 0 && cpuErr == nil && cpuErr2 == nil {
			f.CPUPerMsgUs = (cpu1.Total() - cpu0.Total()) / n * 1e6
			f.SysCPUPerMsgUs = (cpu1.Sys - cpu0.Sys) / n * 1e6
		}
		if cg != nil && runErr == nil {
			if f.InstrPerMsg, err = cg.perMessage(mets[messagesIn]); err != nil {
				runErr = fmt.Errorf("%s: %w", tg.Name, err)
			}
		}
	}
	if cg != nil {
		// callgrind (3.19) trips an assertion on the broker's SIGTERM
		// handling; the profile is dumped already.
		b.Kill()
		return f, runErr
	}
	if err := b.Stop(); err != nil && runErr == nil {
		runErr = err
	}
	return f, runErr
}

// messagesIn is the broker's metric of messages it stored.
const messagesIn = "refbroker_messages_in_total"

// Broker is a refbroker child process.
type Broker struct {
	STOMP, Admin string
	proc         *child
	log          string
}

// StartBroker runs bin with --listen, --admin and --data under dir plus
// args, and waits until /readyz answers 200.
func StartBroker(ctx context.Context, bin, dir string, args []string) (*Broker, error) {
	return startReady(ctx, launch{}, bin, dir, args)
}

// launch is how a broker's command runs: under wrap (a command line that
// takes the broker's after it, such as valgrind's), with env (nil: this
// process's), ready within ready (0: 30 s).
type launch struct {
	wrap, env []string
	ready     time.Duration
}

// startReady is StartBroker under l.
func startReady(ctx context.Context, l launch, bin, dir string, args []string) (*Broker, error) {
	b, all, err := startBrokerOn(l, bin, dir, filepath.Join(dir, "data"), args)
	if err != nil {
		return nil, err
	}
	wait := l.ready
	if wait <= 0 {
		wait = 30 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-b.proc.done:
			return nil, fmt.Errorf("%s exited before ready (%v): %s", strings.Join(all, " "), b.proc.err, osutil.Tail(b.log, 30))
		case <-ctx.Done():
			b.Kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := http.Get("http://" + b.Admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			b.Kill()
			return nil, fmt.Errorf("%s not ready after %s: %s", bin, wait, osutil.Tail(b.log, 30))
		}
	}
}

// startBroker runs bin as StartBroker does, without waiting for it; all
// is its command line. {dir} in args is dir.
func startBroker(bin, dir string, args []string) (b *Broker, all []string, err error) {
	return startBrokerOn(launch{}, bin, dir, filepath.Join(dir, "data"), args)
}

// startBrokerOn is startBroker under l with data as --data; all is the
// broker's command line, without l.wrap.
func startBrokerOn(l launch, bin, dir, data string, args []string) (b *Broker, all []string, err error) {
	stompAddr, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	adminAddr, err := osutil.FreeAddr("127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(dir, "broker.log")
	all = []string{bin, "--listen", stompAddr, "--admin", adminAddr, "--data", data}
	for _, a := range args {
		all = append(all, strings.ReplaceAll(a, "{dir}", dir))
	}
	proc, err := startChild("refbroker", "", logPath, l.env, append(append([]string(nil), l.wrap...), all...)...)
	if err != nil {
		return nil, nil, err
	}
	return &Broker{STOMP: stompAddr, Admin: adminAddr, proc: proc, log: logPath}, all, nil
}

// Stop sends SIGTERM and waits up to 20 s, then kills.
func (b *Broker) Stop() error {
	if err := b.proc.stop(20 * time.Second); err != nil {
		return fmt.Errorf("%w: %s", err, osutil.Tail(b.log, 30))
	}
	return nil
}

// CPUSeconds is the broker process's user and system CPU time so far,
// all threads, from /proc (Linux).
func (b *Broker) CPUSeconds() (cpuTimes, error) {
	return procCPUSeconds(b.proc.cmd.Process.Pid)
}

// procCPUSeconds reads utime and stime of /proc/pid/stat, in clock ticks
// of 1/100 s (USER_HZ, fixed at 100 for user space on Linux).
func procCPUSeconds(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	return parseProcStatCPU(string(b))
}

// parseProcStatCPU returns utime + stime of a /proc/pid/stat line, in
// seconds.
func parseProcStatCPU(s string) (cpuTimes, error) {
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields are counted after its closing one.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("bench: /proc/pid/stat: no command name in %q", s)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state): utime is field 14, stime field 15.
	if len(fields) < 13 {
		return cpuTimes{}, fmt.Errorf("bench: /proc/pid/stat: %d fields, want 15 or more", len(fields)+2)
	}
	var ticks [2]float64
	for i, f := range fields[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("bench: /proc/pid/stat: utime or stime: %w", err)
		}
		ticks[i] = float64(v)
	}
	return cpuTimes{User: ticks[0] / 100, Sys: ticks[1] / 100}, nil
}

// cpuTimes is a process's CPU time in seconds: in user space and in the
// kernel on its behalf.
type cpuTimes struct{ User, Sys float64 }

// Total is user and system time.
func (c cpuTimes) Total() float64 { return c.User + c.Sys }

// Kill sends SIGKILL and waits.
func (b *Broker) Kill() { b.proc.kill() }

// Metrics scrapes the broker's /metrics and returns its unlabelled
// samples by name.
func (b *Broker) Metrics() (map[string]float64, error) {
	return b.SaveMetrics("")
}

// SaveMetrics is Metrics that also writes the scrape as it came to path
// (unless path is empty): a cell's folder keeps the broker's counters
// (group commit's waits and sizes among them) for a later look.
func (b *Broker) SaveMetrics(path string) (map[string]float64, error) {
	resp, err := http.Get("http://" + b.Admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if path != "" {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return nil, err
		}
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// perSync is messages stored per fsync (journal) or per commit (jdbc)
// over the broker's life, from its metrics; 0 when the store syncs
// nothing (memory).
func perSync(m map[string]float64) float64 {
	syncs := m["refbroker_store_fsyncs_total"]
	if syncs == 0 {
		syncs = m["refbroker_store_commits_total"]
	}
	if syncs == 0 {
		return 0
	}
	return m[messagesIn] / syncs
}
