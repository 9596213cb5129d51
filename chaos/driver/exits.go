package driver

import "time"

// Exit is one end of a node's broker process.
type Exit struct {
	Node string `json:"node"`
	// Status is the exit status, -1 when a signal ended the process.
	Status int `json:"status"`
	// Signal names the signal that ended it, if one did.
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
	// ByHarness is set when the driver had told the process to end (a
	// kill, a stop, a power cut, the end of the run): only the other exits
	// say what the broker decided (a fail stop, a refusal to start).
	ByHarness bool `json:"by_harness,omitempty"`
}

// ExitReporter is a driver that records how its nodes' processes ended,
// for the scenario expectation exit: {node: status}.
type ExitReporter interface {
	// Exits returns every process end so far, in order.
	Exits() []Exit
}
