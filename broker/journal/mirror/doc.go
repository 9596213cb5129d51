// Package mirror is the journal on mirrored disks (RAID-1 in the broker,
// refbroker --data DIR given several times): every copy holds the whole
// journal, every record is written and fdatasynced on every healthy copy,
// in parallel, before Write returns, and a copy that fails is dropped
// while the others go on.
//
// # How it is built
//
// The journal opens its directory (the first copy's) on Set.FS, a
// vfs.FS that applies each change (open for writing, write, truncate,
// remove, rename, sync) to every healthy copy in parallel and returns
// once all have it; reads come from the copy recovery chose, or the next
// healthy one if it fails. The journal itself is unchanged: the copies
// are byte for byte the same files. The LOCK file is in the first
// directory only.
//
// A copy that fails an operation (EIO, ENOSPC, a directory gone: the
// probe checks every Options.Probe that each copy's state record is still
// there) is dropped: it is never written, synced or read again, so a
// failed fsync is never retried. The other healthy copies record a new
// generation before the failing operation returns, and so before anything
// is acknowledged without the dropped copy. While at least MinMirrors
// copies are healthy the operation succeeds; with fewer it fails, and the
// journal fails stop.
//
// # State record
//
// Each copy's directory holds a MIRROR file, replaced atomically (a
// synced MIRROR.tmp renamed over it, then the directory synced):
//
//	magic uint32le "LBMR" | version u8 (1) | state u8 | set id [16]byte |
//	generation uint64le | crc32c uint32le (Castagnoli, of what precedes)
//	state: 1 healthy (a full copy as of its generation), 2 stale (dropped,
//	or being rebuilt)
//
// # Recovery
//
// Open reads every record. A copy marked stale, or healthy with a
// generation older than the newest healthy one, missed writes: it is
// never used, only rebuilt. A directory without a record is a new copy
// when it is empty; with journal files in it, it is refused (it is not a
// copy of this journal) unless no directory has a record (a journal that
// had one directory: its copies become the set). A record of another set
// is refused. When several copies are left, each is verified
// (journal.Verify: replay without changing anything; a lone copy is
// not, as the journal replays it at once); the one whose log goes
// furthest is chosen, and
// Open logs which and why (another corrupt, ending earlier, stale).
// Every write acknowledged was synced on every copy healthy at the time,
// so each valid copy holds it; the furthest also keeps what reached only
// one copy before a crash. The other copies are made identical to it
// (files that differ are copied) before the journal opens. So a corrupt
// block in one copy is recovered from the other without --repair.
//
// # Rebuild
//
// A stale or new copy is emptied and rebuilt while the broker serves:
// from the start of the rebuild every change goes to it too, and a
// background copy reads each file from a healthy copy a chunk at a time
// under that file's lock (so it never overwrites a newer write), then
// syncs the copy whole and marks it healthy, holding writers for that
// last step only. A crash before that leaves it marked stale: it is
// rebuilt again. While fewer than MinMirrors copies are healthy, Open
// rebuilds before the journal opens.
package mirror
