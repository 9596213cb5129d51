package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lossbench/lossbench/chaos/bench"
)

func init() {
	register(command{
		name:    "bench",
		usage:   "[--out DIR] [--broker-bin PATH] [--targets a,b] [--producers 1,16] [--sizes 1024] [--duration D] [--repeat N] [--callgrind]",
		summary: "measure throughput and latency of refbroker's stores (and peer brokers) side by side",
		help: `Measures refbroker end to end, the way shared/peers measured ActiveMQ:
each producer sends persistent messages and waits for a RECEIPT per SEND,
one consumer acknowledges every message (client-individual). A fresh
broker is started for every cell. Throughput counts messages both
acknowledged and consumed per second; the backlog left when producers
stop is reported beside it. The disk's own fdatasync rate is measured in
the same run and every cell is given as a fraction of it, and as a ratio
to the reference target. Each refbroker cell also gives the broker's mean
fdatasync time (fsync ms) and its CPU time per message (cpu us/msg, from
/proc). Each journal cell gets a limit, its ceiling from this run's own
figures, and its fraction of it: with p producers min(N, p / (t + r)),
where t is the cell's fdatasync time, r journal-never's round trip with
1 producer and N journal-never's msg/s at p producers; at most 1/t under
--fsync always, N itself for interval and never; with 1 producer
1 / (t + r). It needs journal-never in --targets.

--callgrind gives each refbroker cell the broker's CPU cost without the
machine's noise: the broker runs under valgrind's callgrind, its counters
zeroed once it is ready and dumped when the load ends, and instr/msg is
the instructions it executed over the messages it stored (make cpumsg:
journal-batch and journal-never at 16 producers). Throughput under
valgrind means nothing; the profile stays in the cell's folder
(callgrind.out.1, for callgrind_annotate). Needs Debian's valgrind.

Peer brokers are measured in the same run, with the same message size and
one confirmation awaited per message, when named in --targets (never by
default); the STOMP ones by the same client, NATS and AMQP by the
scenarios' workload clients:
` + peerHelp() + `
ActiveMQ and RabbitMQ come from Debian's packages (chaos/bench/install-peers.sh,
run by make bench, installs ActiveMQ; --rabbitmq adds RabbitMQ); naming
one that is not installed is an error that says what to install.
nats-server is bin/nats-server (make nats-server) or built from its Go
module on first use. Each runs on free 127.0.0.1 ports with its
configuration and data in the cell's folder. Every cell's throughput and
p99 are also given as ratios to the reference target's.

--targets also takes groups: refbroker (every refbroker target, the
default), activemq (every ActiveMQ target), peers (every peer target).

Writes DIR/bench-<time>/bench.json and bench.md and prints the table.`,
		run: runBench,
	})
}

func runBench(ctx context.Context, cmd *command, st *stdio, args []string) int {
	fs := cmd.flags(st)
	out := fs.String("out", "results", "output folder")
	bin := fs.String("broker-bin", "", "refbroker binary (default: refbroker beside this lossbench binary, then bin/refbroker)")
	targets := fs.String("targets", "", "comma-separated targets or groups (default refbroker: "+targetNames(bench.DefaultTargets())+"; peers: "+targetNames(bench.PeerTargets())+")")
	producers := fs.String("producers", "1,16", "comma-separated producer counts")
	sizes := fs.String("sizes", "1024", "comma-separated message sizes in bytes")
	duration := fs.Duration("duration", 10*time.Second, "measured window per cell")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up per cell")
	repeat := fs.Int("repeat", 1, "repeats per cell; the median is reported with every repeat beside it")
	reference := fs.String("reference", "journal-batch", "target the others are compared with")
	callgrind := fs.Bool("callgrind", false, "run each refbroker cell's broker under valgrind's callgrind and give its instructions per message (instr/msg); throughput under it means nothing")
	rest, code, ok := cmd.parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(st.err, "lossbench bench: unexpected arguments %q\n", rest)
		return exitBad
	}
	tgs, err := pickTargets(*targets)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench bench: --targets: %v\n", err)
		return exitBad
	}
	for _, t := range tgs {
		if err := t.Available(); err != nil {
			fmt.Fprintf(st.err, "lossbench bench: target %s: %v\n", t.Name, err)
			return exitBad
		}
	}
	prods, err := intList(*producers)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench bench: --producers: %v\n", err)
		return exitBad
	}
	szs, err := intList(*sizes)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench bench: --sizes: %v\n", err)
		return exitBad
	}
	if *duration <= 0 || *repeat < 1 {
		fmt.Fprintf(st.err, "lossbench bench: --duration must be > 0 and --repeat >= 1\n")
		return exitBad
	}
	brokerBin, err := findBroker(*bin)
	if err != nil {
		fmt.Fprintf(st.err, "lossbench bench: %v\n", err)
		return exitBad
	}
	dir := filepath.Join(*out, "bench-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(st.err, "lossbench bench: %v\n", err)
		return exitBad
	}
	abs, _ := filepath.Abs(dir)
	m := &bench.Matrix{
		BrokerBin: brokerBin, Targets: tgs, Producers: prods, Sizes: szs,
		Warmup: *warmup, Duration: *duration, Repeat: *repeat,
		Reference: *reference, WorkDir: abs, Callgrind: *callgrind,
		Logf: func(f string, a ...any) { fmt.Fprintf(st.err, f+"\n", a...) },
	}
	rep, err := m.Run(ctx)
	if rep != nil {
		if werr := writeBench(dir, rep, st.out); werr != nil {
			fmt.Fprintf(st.err, "lossbench bench: %v\n", werr)
			return exitBad
		}
	}
	if err != nil {
		fmt.Fprintf(st.err, "lossbench bench: %v\n", err)
		return exitBad
	}
	fmt.Fprintf(st.out, "\nresults: %s\n", dir)
	// The report is a view of bench.json: its failure is printed and never
	// changes the exit code.
	if _, err := writeReport(st.out, dir, 0, dir); err != nil {
		fmt.Fprintf(st.err, "lossbench bench: report: %v\n", err)
	}
	return exitOK
}

func writeBench(dir string, rep *bench.Report, w io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Disk %s: %.0f fdatasync/s of 4 KiB; %.0f 4 KiB writes/s at 16 per fdatasync.\n\n",
		rep.Disk.Dir, rep.Disk.SyncsPerSec, rep.Disk.Grouped16PerSec)
	for _, d := range rep.Databases {
		fmt.Fprintf(&sb, "%s: %.0f commits/s (single-row 1 KiB inserts) with 1 client, %.0f with 16.\n\n", d.Kind, d.Commits1, d.Commits16)
	}
	for _, p := range rep.Peers {
		fmt.Fprintf(&sb, "Peer %s: version %s.\n\n", p.Kind, p.Version)
	}
	fmt.Fprintf(&sb, "| target | producers | size | msg/s (acked and consumed) | acked/s | MB/s | p50 ms | p99 ms | p99.9 ms | backlog | msgs per sync | fsync ms | broker CPU µs/msg | of it kernel µs/msg | broker instructions/msg | vs %s | p99 vs %[1]s | of disk limit | limit msg/s | of limit | repeats |\n", rep.Reference)
	fmt.Fprintf(&sb, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range rep.Cells {
		reps := make([]string, len(c.Repeats))
		for i, r := range c.Repeats {
			reps[i] = strconv.FormatFloat(r, 'f', 0, 64)
		}
		fmt.Fprintf(&sb, "| %s | %d | %d | %.0f | %.0f | %.1f | %.2f | %.2f | %.2f | %d | %.1f | %.3f | %.0f | %.0f | %s | %.2f | %.2f | %.2f | %.0f | %.2f | %s |\n",
			c.Target, c.Producers, c.Size, c.MsgsPerSec, c.AckedPerSec, c.MBPerSec, c.P50, c.P99, c.P999,
			c.Backlog, c.MsgsPerSync, c.FsyncMs, c.CPUPerMsgUs, c.SysCPUPerMsgUs, orDash(c.InstrPerMsg, "%.0f"), c.RatioToReference, c.P99RatioToReference, c.DiskFraction, c.Limit, c.LimitFraction, strings.Join(reps, " "))
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target\tproducers\tsize\tmsg/s\tacked/s\tp50 ms\tp99 ms\tbacklog\tper sync\tfsync ms\tcpu us/msg\tinstr/msg\tvs %s\tp99 vs %[1]s\tof disk\tlimit\tof limit\t\n", rep.Reference)
	for _, c := range rep.Cells {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%.1f\t%.3f\t%.0f\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n",
			c.Target, c.Producers, c.Size, c.MsgsPerSec, c.AckedPerSec, c.P50, c.P99, c.Backlog, c.MsgsPerSync, c.FsyncMs, c.CPUPerMsgUs, orDash(c.InstrPerMsg, "%.0f"),
			c.RatioToReference, c.P99RatioToReference, c.DiskFraction, orDash(c.Limit, "%.0f"), orDash(c.LimitFraction, "%.2f"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "disk: %.0f fdatasync/s (4 KiB), %.0f writes/s at 16 per fdatasync\n", rep.Disk.SyncsPerSec, rep.Disk.Grouped16PerSec)
	for _, d := range rep.Databases {
		fmt.Fprintf(w, "%s: %.0f commits/s with 1 client, %.0f with 16\n", d.Kind, d.Commits1, d.Commits16)
	}
	for _, p := range rep.Peers {
		fmt.Fprintf(w, "peer %s: version %s\n", p.Kind, p.Version)
	}
	return nil
}

// orDash formats v, or "-" when it is 0 (not computed for the cell).
func orDash(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func targetNames(ts []bench.Target) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ",")
}

// targetGroups are the names --targets takes for several targets at once.
func targetGroups() map[string][]bench.Target {
	var amq []bench.Target
	for _, t := range bench.PeerTargets() {
		if t.Peer == bench.PeerActiveMQ {
			amq = append(amq, t)
		}
	}
	return map[string][]bench.Target{
		"refbroker": bench.DefaultTargets(),
		"activemq":  amq,
		"peers":     bench.PeerTargets(),
		// replicated-received and -fsynced at link round trips 0, 1, 5 ms,
		// replicated-async
		"replicated": bench.ReplicatedTargets(),
	}
}

// allTargets are every target --targets can name.
func allTargets() []bench.Target {
	return append(append(bench.DefaultTargets(), bench.PeerTargets()...), bench.ReplicatedTargets()...)
}

// pickTargets resolves --targets: target names and groups, in the order
// given, each target once.
func pickTargets(list string) ([]bench.Target, error) {
	all := allTargets()
	if list == "" {
		return bench.DefaultTargets(), nil
	}
	groups := targetGroups()
	var out []bench.Target
	seen := map[string]bool{}
	add := func(t bench.Target) {
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if g, ok := groups[name]; ok {
			for _, t := range g {
				add(t)
			}
			continue
		}
		found := false
		for _, t := range all {
			if t.Name == name {
				add(t)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown target %q; known: %s; groups: refbroker, activemq, peers, replicated", name, targetNames(all))
		}
	}
	return out, nil
}

// peerHelp lists the peer targets for --help, one a line.
func peerHelp() string {
	var sb strings.Builder
	for _, t := range bench.PeerTargets() {
		fmt.Fprintf(&sb, "  %-24s %s\n", t.Name, t.About)
	}
	return strings.TrimRight(sb.String(), "\n")
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// findBroker resolves the refbroker binary: the flag, else beside this
// executable, else bin/refbroker.
func findBroker(flagVal string) (string, error) {
	cands := []string{flagVal}
	if flagVal == "" {
		cands = nil
		if exe, err := os.Executable(); err == nil {
			cands = append(cands, filepath.Join(filepath.Dir(exe), "refbroker"))
		}
		cands = append(cands, filepath.Join("bin", "refbroker"))
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("refbroker binary not found (tried %s); run make build or pass --broker-bin", strings.Join(cands, ", "))
}
