// Package scenario reads lossbench scenario files: YAML documents that
// declare a topology (sites, links, broker nodes, disks, databases), a
// workload, a timeline of faults and the expectations the strategy under
// test promises. scenarios/README.md documents the format with a full
// example; scenarios/suite holds the default suite.
//
// Parsing is strict and reports every problem at once, each as
// file:line:col: message saying what was expected (ErrorList). Parse fills
// in defaults and checks cross-references, so a *Scenario that Parse
// returned can be run without further checks.
//
// A scenario may leave choices to chance (a fault `between: [2s, 5s]`, a
// target `one_of`, a `chance`); Resolve makes them with one seeded
// math/rand/v2 source and returns a Plan: a concrete fault timeline sorted
// by time. The same scenario and seed always give the same plan, so any
// run can be replayed from the seed its result records.
package scenario
