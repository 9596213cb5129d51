package scenario

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"time"
)

// File names in a scenario's output folder that this package defines.
const (
	// PlanFile holds the resolved plan (WriteFile/ReadPlan): what
	// `lossbench check DIR` re-reads.
	PlanFile = "plan.json"
)

// Plan is a scenario with every random choice made: a concrete fault
// timeline sorted by start time. The same scenario and seed always give
// the same plan.
type Plan struct {
	// Scenario is the scenario the plan was resolved from.
	Scenario *Scenario `json:"scenario"`
	// Seed is the seed used (the scenario's, or --seed).
	Seed int64 `json:"seed"`
	// Steps are the faults that happen, by At, ties in file order.
	Steps []Step `json:"steps"`
	// Skipped are the faults whose chance said no, in file order.
	Skipped []Step `json:"skipped,omitempty"`
}

// Step is one concrete fault of a plan.
type Step struct {
	// Index is the fault's position in the scenario's faults list, from 0.
	Index int       `json:"index"`
	Kind  FaultKind `json:"kind"`
	// At is when the fault starts, from the start of the workload.
	At     Duration `json:"at"`
	Target Target   `json:"target"`
	// Duration is how long a windowed fault lasts (pause, disk-full,
	// partition, latency, bandwidth, reset); 0 means until the recovery.
	Duration Duration `json:"duration,omitempty"`
	// Restart says the harness restarts what the fault took down
	// RestartAfter after At; otherwise it stays down until the recovery.
	Restart      bool     `json:"restart,omitempty"`
	RestartAfter Duration `json:"restart_after,omitempty"`
	Delay        Duration `json:"delay,omitempty"`
	Jitter       Duration `json:"jitter,omitempty"`
	KBPerSec     int64    `json:"kb_per_s,omitempty"`
	// Errno, Ops, File, Block and Torn are the fault's (see Fault).
	Errno string   `json:"errno,omitempty"`
	Ops   []string `json:"ops,omitempty"`
	File  string   `json:"file,omitempty"`
	Block *int64   `json:"block,omitempty"`
	Torn  bool     `json:"torn,omitempty"`
	// MoveDisksTo and Node are the fault's (see Fault).
	MoveDisksTo string `json:"move_disks_to,omitempty"`
	Node        string `json:"node,omitempty"`
	// Seed is drawn for a disk-corrupt without block (which file of
	// several and which block) and a torn power-cut (how much of the last
	// write is kept).
	Seed uint64 `json:"seed,omitempty"`
	Pos  Pos    `json:"pos"`
}

// Name labels the step in histories and reports: "kill a1",
// "partition a<->b", "latency clients<->a". The workload writes it in the
// Fault field of fault-start and fault-end events.
func (s Step) Name() string { return string(s.Kind) + " " + s.Target.String() }

// Heal returns when the harness undoes the fault (end of a pause, restart
// after a kill, toxic removed), from the start of the workload; ok is false
// when the fault lasts until the recovery phase.
func (s Step) Heal() (at time.Duration, ok bool) {
	switch s.Kind {
	case Pause, DiskFull, Partition, Latency, Bandwidth, Reset, Blackhole, DiskError, DiskStall:
		if s.Duration > 0 {
			return time.Duration(s.At + s.Duration), true
		}
		return 0, false
	}
	if s.Restart {
		return time.Duration(s.At + s.RestartAfter), true
	}
	return 0, false
}

// planStream is the PCG stream constant ("lossbenc"); part of what makes
// a seed replay the same plan, so it must never change.
const planStream = 0x6c6f737362656e63

// Resolve makes every random choice of the scenario with seed: for each
// fault in file order it draws, from one math/rand/v2 PCG source seeded
// with seed, first the start time (if `between`, uniformly in whole
// milliseconds), then the target (if `one_of`), then whether it happens
// (if chance < 1). Changing a fault therefore may change the draws of the
// faults after it, never of those before.
func (s *Scenario) Resolve(seed int64) (*Plan, error) {
	if s == nil {
		return nil, fmt.Errorf("scenario: resolve: nil scenario")
	}
	r := rand.New(rand.NewPCG(uint64(seed), planStream))
	p := &Plan{Scenario: s, Seed: seed, Steps: []Step{}}
	for i, f := range s.Faults {
		st := Step{
			Index: i, Kind: f.Kind, At: f.At, Target: f.Target,
			Duration: f.Duration, Restart: f.Restart, RestartAfter: f.RestartAfter,
			Delay: f.Delay, Jitter: f.Jitter, KBPerSec: f.KBPerSec, Pos: f.Pos,
			Errno: f.Errno, Ops: f.Ops, File: f.File, Block: f.Block, Torn: f.Torn,
			MoveDisksTo: f.MoveDisksTo, Node: f.Node,
		}
		if len(f.Between) == 2 {
			lo, hi := time.Duration(f.Between[0]), time.Duration(f.Between[1])
			if hi < lo {
				return nil, fmt.Errorf("scenario: resolve: fault %d: empty range [%s, %s]", i, lo, hi)
			}
			steps := int64((hi - lo) / time.Millisecond)
			st.At = Duration(lo + time.Duration(r.Int64N(steps+1))*time.Millisecond)
		}
		if len(f.OneOf) > 0 {
			st.Target = f.OneOf[r.IntN(len(f.OneOf))]
		}
		if (f.Kind == DiskCorrupt && f.Block == nil) || f.Torn {
			st.Seed = r.Uint64()
		}
		if f.Chance < 1 && !(r.Float64() < f.Chance) {
			p.Skipped = append(p.Skipped, st)
			continue
		}
		p.Steps = append(p.Steps, st)
	}
	sort.SliceStable(p.Steps, func(i, j int) bool { return p.Steps[i].At < p.Steps[j].At })
	return p, nil
}

// WriteFile writes the plan as indented JSON.
func (p *Plan) WriteFile(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("scenario: plan: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("scenario: plan: %w", err)
	}
	return nil
}

// ReadPlan reads a plan written by WriteFile.
func ReadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("scenario: plan %s: %w", path, err)
	}
	if p.Scenario == nil {
		return nil, fmt.Errorf("scenario: plan %s: no scenario", path)
	}
	return &p, nil
}
