// Package checker decides, from a run's history (chaos/history), what a
// failure did to the messages: which acknowledged messages were lost, which
// were delivered twice, how long the service was unavailable and what the
// sends cost in latency. It is pure: Check takes the events and returns
// numbers, so it runs again on any saved history.jsonl (`lossbench check`).
//
// The model is a total queue: every message a producer sends should be
// received by some consumer exactly once, whatever the destination or the
// consumer. Messages are told apart by their unique id. Definitions, each
// counting distinct message ids unless it says otherwise:
//
//	attempted       ids with at least one invoke
//	acknowledged    ids with at least one ok (a RECEIPT arrived)
//	received        ids with at least one recv
//	lost            acknowledged, never received and not dead-lettered
//	                (after the drain)
//	duplicated      deliveries beyond the first, summed over ids (a recv
//	                event counts as a delivery, redelivered or not)
//	duplicated_ids  ids received more than once
//	unexpected      received but never invoked (a broker inventing or
//	                corrupting messages, or a history from another run)
//	recovered       invoked, never acknowledged (every attempt failed, was
//	                unknown or never completed), yet received: the broker
//	                stored a send the client could not confirm. Of these,
//	                recovered_failed had only "fail" outcomes, which promise
//	                the message was not stored: a broker bug worth a look.
//	unconfirmed     invoked, never acknowledged, never received: not loss
//	                (nobody was promised anything), but not delivered either
//	drained         ids first received by the runner's final drain (recv
//	                events of process "drain"): the consumers had stopped
//	                taking them (a stall) or had not caught up; received,
//	                so not lost
//	dead_lettered   ids never received from their destination but read by
//	                the final drain from its dead-letter queue (recv events
//	                of process "dead-letter"; refbroker's /queue/DLQ.<name>):
//	                the broker kept them and gave up delivering them after
//	                too many redeliveries (consumers dying while holding
//	                them); neither lost nor received
//
// The send time of a message is the invoke of its first acknowledged
// attempt (for unacknowledged messages, of its first attempt). Lost
// messages are split by producer and by phase: "during" if the send time
// lies inside a fault window, "before" if it precedes every fault window,
// "after" otherwise (after some fault ended, inside none). A fault window
// runs from a fault-start event to the fault-end event of the same Fault
// name (matched first-in first-out); a start without an end lasts to the
// end of the history.
//
// Loss attribution (Attribution, result.json's loss_attribution): each
// lost message is attributed to the fault window in force when it was
// acknowledged (its first ok; "before any fault" before the first fault,
// "after X" between windows, X the fault that ended last) and to the node
// whose RECEIPT it was, and placed in the prefix, middle or postfix of the
// history of acknowledgements. rpo_s, the observed recovery point, is how
// long before the fault (the first not over at that moment) the oldest
// lost message was acknowledged.
//
// Order: a consumer's delivery of producer P's message n is an order
// violation when that consumer had already received, from P on the same
// destination, a message m > n (the highest such m is used), and all of:
// this is n's first delivery to anyone, it is not marked redelivered, and
// n was acknowledged before m was first invoked. The last condition means
// the broker held n before m existed, so delivering m first reordered the
// queue; it excludes a producer's retries of unconfirmed sends, and the
// first two exclude redeliveries after a crash or a consumer failover,
// which are duplicates, not reorderings.
//
// Latency is, per ok event, the time from its invoke (LatencyNS, or the
// difference of the timestamps); end-to-end latency is, per id's first
// delivery, the time since the message's first invoke. Percentiles are in
// milliseconds.
//
// Time: offsets are seconds from the first event of the history. The send
// phase runs from the first invoke to the last invoke or ok, whichever is
// later. Throughput is acknowledged-and-received ids per second of the
// send phase. The timeline has one bucket per second of the history.
//
// Unavailability: within the send phase, every interval longer than
// Options.UnavailableAfter (default 1s) with no ok event, counting the
// intervals from the phase's start to the first ok and from the last ok to
// the phase's end. unavailable_s is their summed length.
//
// Dual-active: each acknowledged attempt says its node (the history's Node,
// the broker the producer's connection went to) acknowledged at some time
// between its invoke and its ok. A node's attempts no more than
// Options.ActiveGap (default 1s) apart make one period of activity; where
// periods of two different nodes overlap, two nodes acknowledged at once:
// two masters, under any HA strategy (database lease, shared storage,
// replication). dual_active lists those windows with their nodes and
// dual_active_s sums them. A failover does not count: the old master's
// last receipt arrives before the new master acknowledges anything.
//
// Time to recover, per fault window: when the fault caused an outage (a
// gap of more than Options.UnavailableAfter without an ok that overlaps
// the fault's window), from the fault's start to the ok that ended the
// gap; a service may ride a fault for a moment before the outage begins
// (a killed database's open connections commit on briefly). Without such
// a gap, from the fault's start to the first ok of a send invoked at or
// after it (an ok in flight when the fault hit does not count). A fault
// with no such ok has no time to recover (null in JSON), and the
// recover_s metric uses the time from its start to the end of the history
// instead.
package checker
