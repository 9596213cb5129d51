// Package cjdbc is the replicated JDBC store in the manner of C-JDBC's
// RAIDb-1: every write goes to several databases (any mix of PostgreSQL,
// MariaDB and SQLite, each with broker/sqlstore's schema), reads come
// from one of them. refbroker uses it for --store jdbc with --dsn given
// more than once.
//
// # Writes
//
// One writer goroutine forms groups of the Writes waiting (as sqlstore's
// group commit does), checks their acks against the live messages,
// assigns the seqs itself and numbers the group (Group.N, one more than
// the last, across restarts). The group goes, in that order, to the queue
// of every enabled database; each database has one applier that commits
// its queue in order, every group waiting (up to 256) in one transaction
// (Apply), which also records the last N in the database's
// lossbench_cjdbc row. So every database
// holds the same rows with the same seqs, and N says how far it got.
//
// # Write policies: what a RECEIPT promises
//
//   - all: the Write returns once every database enabled when its group
//     was dispatched has committed it or been disabled, and at least
//     MinDatabases committed it. An acknowledged message is on every
//     enabled database, and on at least MinDatabases.
//   - majority: once more than half of the configured databases (n/2+1 of
//     n) committed it; MinDatabases is raised to that. An acknowledged
//     message survives the loss of any n/2 rounded up minus one databases
//     (with two databases this is all).
//   - first: once one database committed it; the others apply it after.
//     An acknowledged message may be on one database only: losing that
//     one before the others caught up loses it. Measured by the scenario
//     cjdbc-write-first-db-data-lost.
//
// A Write whose group cannot meet its policy any more (too many
// databases failed) returns an error wrapping store.ErrFailed and the
// store fails: nothing more is acknowledged (fail stop).
//
// # Failure, recovery log and resynchronisation
//
// A database whose commit fails (connection lost, server killed, commit
// timeout) is disabled: it gets no more groups, and the groups it had not
// committed count as failed for it. The store goes on while at least
// MinDatabases are enabled, and fails below.
//
// The recovery log is the other databases. Acks delete rows, so what a
// disabled database misses is exactly the difference between its content
// and an enabled database's current content; replaying the missed groups
// one by one would write rows already deleted, and a separate journal
// would be one more disk to lose. A copy of the backlog is bounded by the
// backlog, not by how long the database was away, and it is as durable as
// the write policy makes the enabled databases.
//
// Every Retry a disabled database is connected again. Once it answers:
// from the next group on it gets every group in its queue (state
// "syncing", not counted for the policy); once the enabled source has
// applied every group before that one, the source's messages are copied
// to it in one transaction (Replace: delete all, insert the copy, record
// N of the last group before the queue). Then its queue is replayed: the
// copy was read while the source went on, so it may already hold some of
// those groups' rows; a replayed group deletes its adds' seq range before
// inserting them (its acks delete as always), which makes the copy plus
// the replay exactly the source's content. When at most a few groups are
// left in its queue (under steady load it rarely empties) it is enabled
// again: the groups left were not counted for it, every later one is.
//
// A broker killed during a copy leaves the copy's transaction rolled
// back, the database at its old N; killed during the replay, the database
// at the N of the last group replayed. Either way Open finds it behind
// and copies again.
//
// # Open
//
// Open reads every database's N and seqs. With q databases holding every
// acknowledged group (q = MinDatabases under all, n/2+1 under majority,
// 1 under first), Open needs n-q+1 databases reachable (it tries again
// every Retry until its context ends, for databases starting with the
// broker): then one of them
// holds everything acknowledged, and since a database applies groups in
// order, the one with the highest N does. It is the source: every
// reachable database at another N gets its copy before the store serves;
// those not reachable start disabled and are resynchronised when they
// answer. Seqs start past the highest any database knows, plus
// sqlstore's gap for commits of an earlier session still on their way.
//
// # Reads
//
// Recover and Load read the enabled database that applied the most
// groups: a Write returns once some database committed its group, and
// databases apply groups in order, so that one holds every acknowledged
// add and ack (under policy first the others may lag).
//
// # Status
//
// Stats (in /metrics as refbroker_store_db_<i>_..., and in /status's
// store_stats) gives each database's state (0 disabled, 1 syncing,
// 2 enabled), lag in groups, last applied group, resyncs and failures.
package cjdbc
