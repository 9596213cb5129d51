// Package workload drives a broker with real clients (STOMP through go-stomp,
// or another Protocol: see protocol.go) and
// writes every operation to a history.Writer, so the checker can tell which
// acknowledged messages a failure lost.
//
// Every message a Producer sends carries these headers (part of the
// contract with the checker and with brokers that deduplicate):
//
//	lb-producer  the producer's id, e.g. "p3"
//	lb-seq       the producer's sequence number, from 1
//	lb-id        the message's unique id, "<run>-p3-000000123"
//	lb-ts        unix nanoseconds of the message's first send attempt
//	dedup-id     = lb-id, so a broker may drop a retried duplicate
//	persistent   "true" unless the producer is configured otherwise
//
// A send counts as acknowledged only when its RECEIPT arrives. Its history
// is an invoke followed by exactly one of ok (RECEIPT), fail (the broker
// answered with an ERROR frame that names the send's receipt) or unknown
// (the connection broke or timed out first: the message may or may not be
// stored). Failed and unknown sends are retried with the same id and
// Attempt+1 after a failover, until they succeed, MaxAttempts is reached or
// the producer's context ends.
//
// A Consumer records each delivery, then queues its ACK for a goroutine of
// its own: go-stomp hands MESSAGEs to a subscription (a channel of 16) on
// the goroutine that also writes ACKs, so a receive loop that blocked on
// an ACK with more messages in flight could stall for good. FinalDrain,
// after the consumers stopped, reads what they left with fresh
// connections until the broker is empty (where it says its depth) or
// quiet, so a stalled consumer's backlog is read, not counted as lost.
//
// Clients fail over like ActiveMQ's failover: transport: on a broken
// connection they try the next address of their list, then the one after,
// backing off between rounds, until a connection is made or their context
// ends.
package workload
