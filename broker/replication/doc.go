// Package replication is replicated master/slave for the refbroker
// (--replication-listen, --peer, --replica-ack, --min-replicas,
// --witness): every message has copies on two or more nodes, ideally in
// different sites, so that losing a site loses nothing acknowledged.
//
// # How it works
//
// Each node keeps its own journal (broker/journal). The master's journal
// taps every group commit as it is written (journal Options.Tap): the
// batches, in log order, with the seqs the journal gave them. The master
// sends them to every replica as one GROUP frame while its own fdatasync
// runs, and a Write returns (the broker sends its RECEIPT) only once its
// own sync is done and MinReplicas in-sync replicas acknowledged the
// group: one round trip per group commit, overlapped with the local
// fsync. A replica applies each group to its journal through
// store.Applier (the master's seqs are kept) and acknowledges once it is
// received (--replica-ack received) or applied and fdatasynced (fsynced).
// Batches are numbered by an LSN, one per batch; a new master numbers on
// from the LSN its store had reached as a replica. An ACK carries the
// highest LSN the replica holds as promised.
//
// A replica that connects (or comes back) with its position (the last
// LSN it applied and the master term, epoch and id, that streamed it;
// kept in replication.position) is resumed when the master's history of
// recent groups proves its log a prefix of the master's: it is sent only
// the groups after its position (position.go says when, and why a
// lagging or lying position is safe). Otherwise it is resynced: the
// master takes a snapshot of its live messages (what its sealed segments
// and tail still hold) at an LSN with no write in flight, the replica
// wipes its journal and applies the snapshot, and from then on receives
// every group after that LSN. Either way it is in sync once it
// acknowledged the master's LSN of the moment it joined. While a resync
// or a catch-up runs, the file replication.resyncing in the node's data
// directory marks its copy as partial: such a node never becomes master.
// A node drops its position when it becomes master, so a returning
// ex-master is always resynced whole and what it had written but not
// replicated is discarded; with --min-replicas 1 or more none of it was
// acknowledged, with 0 it may have been (the loss an asynchronous pair
// has, measured by the replicated-async-site-a-lost scenario).
//
// Failure detection: the master pings an idle link every Heartbeat; the
// replica answers every ping with an ACK. Either side drops a link silent
// for Timeout. A replica more than MaxLag bytes behind is dropped too.
//
// # Roles and epochs
//
// The roles are broker/role's machine; the Lock is either
//
//   - WitnessLock: the grant of a witness (refbroker witness) in a third
//     site, epoch-numbered and kept by renewing (a role.Term: the master
//     stops acknowledging Margin before the witness may grant the next
//     epoch). The witness grants the next epoch only to a node that holds
//     every acknowledged message: the last master, or a replica the master
//     reported in sync in its renewals. Once the witness holds a set of
//     in-sync replicas, the master waits for each of them, so a replica
//     it drops stops delaying writes only once the witness knows. A
//     partitioned pair has at most one master: the side that reaches the
//     witness.
//   - PeerLock, without a witness: a node that has heard from no master
//     for the TTL, and outranks every node it can reach, elects itself
//     with the next epoch. A partition may so elect two masters (split
//     brain): with --min-replicas 1 or more neither acknowledges alone;
//     with 0 both do.
//
// Every connection starts with the master's epoch; a replica refuses a
// master older than one it has served (replication.epoch, kept durably),
// and a master that meets a newer master (or, on a tie without a
// witness, one with a smaller id) is stale: it is fenced (no more
// acknowledgements), its lock is lost and the broker fails stop.
// Restarted, it is a replica.
//
// # Wire format
//
// Every message is one frame, framed like the journal's records but
// without padding:
//
//	 0         4         8    9                          8+length
//	+---------+---------+----+-----------------------------+
//	| length  | crc32c  |type| payload (length-1 bytes)    |
//	| uint32le| uint32le|  u8|                             |
//	+---------+---------+----+-----------------------------+
//	length = 1 + len(payload), at most MaxFrame
//	crc    = CRC-32C (Castagnoli) of the 4 length bytes, the type byte
//	         and the payload
//
// Payloads (u64 little-endian, uv unsigned varint, str = uv length +
// bytes):
//
//	HELLO    (1) m→r  epoch u64 | master id str | lsn u64
//	WELCOME  (2) r→m  ok u8 | epoch u64 (the replica's, if refused) | id str |
//	                  has position u8 | [position]
//	RESUME  (14) m→r  ok u8 | lsn u64 (the master's, to catch up to)
//	  position: epoch u64 | master id str | lsn u64 | next seq u64
//	  (also the replication.position file: one frame of type 9)
//	SNAPSHOT (3) m→r  lsn u64 | next seq u64 | final u8 | batch
//	GROUP    (4) m→r  first lsn u64 | nbatches uv | nbatches × batch
//	ACK      (5) r→m  lsn u64
//	PING     (6) m→r  lsn u64 (sent so far)
//	PROBE    (7) node state;  STATUS (8) node state
//	  node state: id str | role u8 | epoch u64 | eligible u8 | next seq u64
//	ACQUIRE (10), RENEW (11), RELEASE (12) node→witness:
//	  id str | epoch u64 | n uv | n × in-sync replica id str
//	GRANT   (13) witness→node: ok u8 | epoch u64 | holder str | reason str
//	batch: nacks uv | nacks × seq uv | nadds uv |
//	  nadds × (seq u64 | queue str | nheaders uv |
//	           nheaders × (key str | value str) | body str)
//
// A master's connection: HELLO, WELCOME; with a position, RESUME: if ok,
// the GROUPs after the position follow at once, else the replica resets
// its store and WELCOMEs again without one; then the SNAPSHOT chunks (the
// last one final), then GROUPs and PINGs one way and ACKs the other. An ACK
// beyond what was sent, or going back, is a replica lying about its
// position: it is dropped and never counted.
package replication
