// Package journaled is the "journaled-jdbc" store: the journal
// (broker/journal) in front of the SQL store (broker/sqlstore), in the
// style of ActiveMQ 4.x's default persistence. A Write returns once its
// batch is in the journal and, under the journal's sync policy, fsynced; a
// checkpointer moves what the journal holds into the database every
// Options.Interval and whenever the journal has taken Options.MaxBytes
// since the last checkpoint. Messages added and acknowledged between two
// checkpoints never reach the database.
//
// The window between a Write and the checkpoint that carries it into the
// database is exactly what losing the journal's disk loses; Stats reports
// it as checkpoint_lag_messages (unacknowledged messages that are only in
// the journal) and checkpoint_lag_seconds (age of the oldest write not yet
// checkpointed).
//
// # Generations
//
// The journal directory (Options.Dir) holds a LOCK file and one journal per
// generation, in subdirectories named gen-<16 lowercase hex digits>, e.g.
// gen-000000000000002a. Writes go to the current generation. A checkpoint
// rotates: the next generation (opened ahead of time) becomes current, and
// the previous one is frozen. Each frozen generation, oldest first, is then
// applied to the database in ONE transaction:
//
//	BEGIN
//	  [Options.SQL.Fence]                       lease epoch check, if any
//	  SELECT gen FROM lossbench_checkpoint      must be below this generation
//	  INSERT the generation's adds not acked within it (their own seqs)
//	  DELETE the rows the generation acked
//	  raise lossbench_seq.high to the highest seq handed out so far
//	  UPDATE lossbench_checkpoint SET gen = <this generation>
//	COMMIT
//
// and only then is its directory deleted. The generation number in
// lossbench_checkpoint commits with the rows, so a generation is applied
// exactly once: after a crash between the COMMIT and the deletion, Open
// finds a directory whose generation is not above the recorded one and
// deletes it without applying it again.
//
// Recovery (Open) is the same code: every generation on disk above the
// recorded one is applied in order, and then everything is in the database;
// Recover and Load read it back through the SQL store. A lost journal
// directory loses the generations not yet applied and nothing older.
//
// # Record format
//
// The journal's own framing (CRC32C, torn-tail handling, group commit) is
// used unchanged. One store.Batch is one journal batch whose first add is
// a meta record and whose other adds are the batch's messages, in order:
//
//	meta add: queue "\x00lossbench/journaled" (metaQueue), no headers, body:
//	  version u8 (1) | nadds uvarint | nadds × seq uvarint |
//	  nacks uvarint | nacks × seq uvarint
//	then nadds adds: queue, headers and body of each message
//
// The seqs in the meta record are the store's own (the journal's seqs
// restart in every generation and are only used to read a body back).
// Nothing is ever acknowledged inside a generation's journal: a generation
// is dropped whole once applied.
//
// store.Applier (the journal's Apply, which keeps the adds' seqs) does not
// replace the meta record: the adds could keep the store's seqs through
// it, but the acks of a batch are mostly of messages written in earlier
// generations (already in the database), and the journal refuses an ack
// of a message it does not hold. The meta record carries them, and the
// adds' seqs with them, in one record.
//
// Seqs keep increasing across restarts: the next seq after Open is one
// more than the highest of the database's high-water mark, its rows and
// the applied generations; every checkpoint raises the high-water mark to
// the highest seq handed out when it ran. Seqs handed out after the last
// checkpoint of a journal that is then lost may be handed out again.
package journaled
