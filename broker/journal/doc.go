// Package journal is the refbroker's durable message store: segmented
// append-only files of checksummed records, group commit, recovery by
// replay, and reclamation of segments whose messages were all acknowledged.
//
// # On-disk format
//
// A journal is a directory holding a LOCK file (flock'ed by the one process
// that has the journal open) and segment files named by a 16-digit
// lowercase hexadecimal segment id, e.g. 000000000000002a.log. Ids increase
// by one per segment. A segment is created at its full size (SegmentSize,
// default 64 MiB) by writing zeros, so appending never changes its size and
// fdatasync flushes only data. A segment may grow past SegmentSize when a
// single batch does not fit in an empty one.
//
// A segment is a sequence of frames, each starting at a multiple of 8:
//
//	 0         4         8    9                          9+len-1
//	+---------+---------+----+-----------------------------+---------+
//	| length  | crc32c  |type| payload (length-1 bytes)    | 0 pad   |
//	| uint32le| uint32le|  u8|                             | to 8    |
//	+---------+---------+----+-----------------------------+---------+
//	length = 1 + len(payload): the bytes after the crc word, before padding
//	crc    = CRC-32C (Castagnoli) of the 4 length bytes, the type byte and
//	         the payload
//
// A length word of zero (and so an all-zero frame header) or the end of the
// file ends the log: preallocated space is zero. The first frame of every
// segment is a segment header; every other frame is a batch:
//
//	segment header (type 1), fixed 20 bytes:
//	  magic uint32le "LBJ1" | segment id uint64le | next seq uint64le
//	batch (type 2), one store.Batch, so it is atomic:
//	  nacks uvarint | nacks × seq uvarint
//	  nadds uvarint | nadds × add
//	add:
//	  seq uint64le | len uvarint | queue | nheaders uvarint |
//	  nheaders × (len uvarint | key | len uvarint | value) |
//	  len uvarint | body
//
//	skip (type 4): damaged bytes that repair skipped; the payload is
//	  whatever was there and means nothing
//	move (type 6): live messages compaction moved here; a batch without
//	  acks whose adds keep their seqs (below the next seq)
//
// In a fenced journal (Options.Epoch, refbroker --shared) the segment
// header is version 2: the type 1 frame followed at once by an epoch frame
// (a version 1 segment, as journals without epochs have, is epoch 0):
//
//	epoch (type 5), fixed 24 bytes:
//	  epoch uint64le | previous segment id uint64le | its end uint64le
//
// The epoch is the lease epoch of the broker that started the segment;
// previous id and end say where the previous segment's log ended then.
// A broker that takes over (a newer epoch than the last segment's) always
// starts a new segment, so the end of the old epoch's log is on record.
// At recovery, frames past that end in the previous segment, and segments
// of an older epoch than one before them, were written by an ex-master
// after the takeover: they are split-brain evidence (SplitBrain, logged,
// the split_brain_frames stat), not replayed, and left on disk. A fenced
// Open of a journal that a newer epoch wrote to fails (ErrStaleEpoch).
//
// The header's next seq is the sequence number the journal would have
// handed out next when the segment was started, so sequence numbers keep
// increasing even after every older segment was deleted.
//
// The MANIFEST file holds one frame (type 3), replaced atomically (a
// synced MANIFEST.tmp renamed over it, then the directory synced):
//
//	manifest (type 3), fixed 37 bytes:
//	  magic uint32le "LBJM" | oldest id uint64le | newest id uint64le |
//	  flags u8 (bit 0: closed cleanly) | clean segment id uint64le |
//	  clean end uint64le
//
// Every segment from oldest to newest exists. A new segment is named
// newest once it was preallocated, before it can hold a record, and a
// reclaimed segment stops being oldest before its file is removed, so a
// missing segment is always a loss. A journal without a MANIFEST (written
// before it existed) opens as before and gets one.
//
// # Recovery
//
// Open first checks that no segment is missing: segment ids are
// consecutive, and the files cover the manifest's oldest to newest. A
// missing segment (deleted, lost with a disk) is a *MissingSegmentsError
// naming it, unless Options.Repair is set: then the journal says what the
// missing segments held (the seqs between its neighbours' headers and
// records), puts an empty segment in place of each, and goes on.
//
// Open then replays every segment in id order and rebuilds the index of live
// (added, not yet acknowledged) messages. At the end of the last segment a
// torn tail (a short, zero or garbage frame after which no valid frame
// follows) is what a crash during an unsynced write leaves; it is zeroed
// and reported through Options.Logf. Only a crash leaves one: Close
// records in the manifest where the log ends, Open clears that mark before
// anything is written, and while it is set any damage at the end of the
// log, a log that ends elsewhere, or data in a later segment is
// corruption. Anything else — a bad frame followed
// by a valid one, a bad frame in an older segment, a batch that decodes
// badly, a sequence number going backwards — is corruption: Open returns a
// *CorruptionError with the file and offset and refuses to go on, unless
// Options.Repair is set. Then it salvages: it skips the damaged frame
// (to where its length word says the next frame starts, if a valid frame
// is there, else to the next valid frame), keeps every valid frame after
// it, in that segment and all later ones, and turns the damaged bytes
// into a skip frame so the journal replays cleanly from then on (a
// damaged segment header is written anew). It reports how many messages
// the damaged frames held and which seqs: seqs are handed out in log
// order, so they are the seqs between the last one before the damage and
// the first after it. Acknowledgements in a damaged frame are lost too:
// messages they acknowledged come back and may be delivered again.
//
// # Writing
//
// A single writer goroutine writes the files. Under the default sync
// policy (batch) it takes every Write waiting at that moment, frames them
// into one buffer, writes it with one pwrite, makes it durable with one
// fdatasync and answers every waiter: group commit. Batches arriving
// during the fdatasync wait, unwritten, and make up the next group, so
// one sync covers every batch that arrived during the previous one. When
// fewer are waiting than the last sync answered, the writer waits a
// little for more (half the last sync's duration, 1 ms at most), so that
// a group does not shrink to the few writers that happened to come back
// first. Under "always" each Write gets its own write and fdatasync;
// under "interval" and "never" Write returns once written.
//
// Acks without a RECEIPT (store.LazyAcker, WriteAcksLazy) get no
// fdatasync of their own under batch: they are written with the next
// group, answered at once, and made durable by the next sync, or 10 ms
// later if no batch needing one comes; Close syncs them. An ack lost in a
// crash only brings its message back (a duplicate, allowed by
// at-least-once), never loses one; an add is still answered only after
// the fdatasync covering it, and reclamation still waits for a sync that
// covers every ack. The broker writes its acks this way when no SEND
// batch carried them within 10 ms; an ACK frame asking for a RECEIPT is
// written durably.
// The first write or sync error is final (fail-stop): the journal never
// retries a sync, since after a failed fsync the page cache may already
// have dropped the data.
//
// # Reclamation and memory
//
// The journal keeps in memory only an index entry per live message
// (sequence → segment, offset, length). Once every message added in the
// oldest segment is acknowledged, and that is durable, the segment is
// deleted; segments are deleted strictly from the oldest, so an
// acknowledgement can never be deleted before the message it acknowledges.
//
// So one message never acknowledged would keep every later segment on
// disk. Compaction prevents that: at each roll the writer rewrites the
// live messages of the oldest segments (two at most, what fits, and only
// with two sealed segments newer: consumers a little behind are not
// overtaken) into the new segment as a move record, which keeps their
// seqs, when they are at most half live, or when the journal as a whole
// is. Once the move is
// durable the old segments hold nothing live and are deleted. Replay
// takes a move record as the message's new place (or as the message, if
// its old segment is gone); an ack names the seq and follows the move in
// the log, so it still applies after a restart. Disk use stays under
// about twice the live data plus a few segments; Stats reports it as
// journal_disk_bytes and journal_live_ratio (the bytes of the live
// messages' records / disk bytes).
//
// Recover hands out bodies up to a budget and the rest with Body nil, for
// Load to read back; moved messages are merged back into seq order.
package journal
