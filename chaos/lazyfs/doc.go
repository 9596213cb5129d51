// Package lazyfs is a fault-injecting FUSE filesystem for a node's data
// directory, under any broker process. Above all it loses what was never synced,
// the way a machine loses its page cache when the power goes: a loopback
// of a backing directory whose file writes stay in memory, in a page
// cache of its own, until the file is fsynced or fdatasynced. PowerCut
// throws that memory away, so a program restarted afterwards sees only
// what it had made durable. It plays the part LazyFS plays in etcd's
// robustness tests, for the local driver's power-cut fault.
//
// # Durability model
//
//   - write(2) goes to the file's overlay: dirty 4 KiB pages in memory,
//     plus the file size as the program sees it. read(2), stat(2) and
//     the size reported on lookup merge the overlay over the backing file.
//   - fsync(2) and fdatasync(2) on any descriptor of a file write all of
//     that file's dirty pages and its size (truncations included) to the
//     backing file and fsync it. close(2) persists nothing, like a real
//     page cache. Time does only under a writeback model
//     (Options.Writeback, see Writeback; HostWriteback reads this
//     machine's vm.dirty_expire_centisecs and
//     vm.dirty_writeback_centisecs): a flusher then writes back, every
//     interval, each file dirtied at least the expiry before, so a cut
//     long after the last write keeps what a real machine would have
//     written back. The zero Options write nothing back: the worst case.
//   - truncate(2)/ftruncate(2) and O_TRUNC change only the overlay's size
//     until the next fsync; fallocate(2) without flags or with
//     FALLOC_FL_KEEP_SIZE goes straight to the backing file (an
//     allocation of zeros); other fallocate modes return ENOTSUP.
//   - PowerCut drops every dirty page and every size known only in
//     memory, of every file, open or not. The backing files then hold
//     exactly what was synced (plus whatever an fsync in flight at the
//     cut had already handed to the backing filesystem: an fsync that
//     overlaps the cut may or may not persist, as on real hardware).
//
// Simplifications, stated so nobody mistakes them for a full model:
//
//   - Metadata operations (create, mkdir, rename, link, unlink, rmdir,
//     chmod, utimes) go straight to the backing directory and are treated
//     as durable at once: a power cut never loses a directory entry, so
//     a program that forgets to fsync a directory is not caught.
//   - A cut drops whole pages: Stats.LastDropped counts dirty bytes at
//     page granularity, not the exact bytes written.
//   - Synced data lives in the backing filesystem's own page cache; it
//     survives the cut because the real machine keeps running. That is
//     what the model wants: synced means durable.
//   - Files are told apart by their backing inode number, so the backing
//     directory must be one filesystem (no mounts inside it).
//   - mmap of a file is not supported for shared writable mappings
//     (every file is opened with direct I/O so the kernel keeps no page
//     cache of its own above the overlay).
//
// # Faults
//
// Besides PowerCut, each doing exactly what it says and nothing else:
//
//   - InjectError (ErrorRule): from the call until it is cleared, read,
//     write or fsync (any set) of files whose path matches a glob fail
//     with an errno (EIO, ENOSPC), each one or with a probability drawn
//     from a seed. The failed operation has no other effect.
//   - Stall: every operation (lookup, open, create, read, write, fsync,
//     flush, getattr, setattr, unlink, rename, fallocate) waits until the
//     stall ends, then proceeds: a dying disk or a SAN path failover.
//     Directory listing, mkdir and rmdir are not held.
//   - PowerCutTorn: a power cut that keeps a prefix (length from a seed)
//     of the last write not yet made durable.
//   - Corrupt: at rest (nothing running on it), every bit of one block of
//     one file matching a glob is flipped (CORDS-style).
//
// Stats counts what was injected (Injected, Stalled, LastTorn), so a test
// can tell, say, that a broker never retried a failed fsync.
//
// The kernel is told not to cache attributes or entries (timeouts of 0)
// and every file is opened with FOPEN_DIRECT_IO, so every read, write and
// stat reaches the overlay.
package lazyfs
