package driver

import "context"

// Depths is a driver whose brokers say how many messages they hold, so
// the runner's final drain reads until a broker is empty instead of until
// it is quiet, and a consumer that stalled with messages left is noticed.
type Depths interface {
	// QueueDepth returns the messages node's broker holds on dest, ready
	// or delivered and not yet acknowledged; ok is false when its broker
	// does not say (a command broker) or is not serving.
	QueueDepth(ctx context.Context, node, dest string) (n int, ok bool)
}
