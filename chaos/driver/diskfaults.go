package driver

import "context"

// DiskFaulter is a driver that injects faults into the filesystem under a
// node's data directory (the local driver: chaos/lazyfs over FUSE), for
// any broker process. It applies to the disks of the nodes named in
// Config.FaultFSNodes; for another disk, or where the filesystem cannot
// be mounted, its methods return an error wrapping ErrUnsupported that
// says why.
type DiskFaulter interface {
	// DiskError makes ops ("read", "write", "fsync") on the disk fail with
	// errno ("EIO", "ENOSPC") until ClearDiskError. node "" is every
	// node's path to the disk; a node of a shared disk is its path only
	// (the others still reach the disk).
	DiskError(ctx context.Context, disk, node, errno string, ops []string) error
	// ClearDiskError ends every DiskError of the disk (node as above).
	ClearDiskError(ctx context.Context, disk, node string) error
	// StallDisk holds every operation on the disk until EndDiskStall
	// (node as above).
	StallDisk(ctx context.Context, disk, node string) error
	// EndDiskStall lets the held operations go on.
	EndDiskStall(ctx context.Context, disk, node string) error
}

// TornPowerCutter is a PowerCutter that can also tear the last unsynced
// write: a prefix of it, its length drawn from seed, reaches the disk.
type TornPowerCutter interface {
	TornPowerCut(ctx context.Context, node string, seed uint64) error
}

// DiskCorrupter damages a disk at rest (its nodes stopped): every bit of
// one block of one file matching glob (relative to the disk) is flipped;
// block < 0 lets seed choose it, and seed chooses among several files. It
// returns what it damaged, e.g. "data/journal/0000000000000001.log block 3
// (bytes 12288-16383)".
type DiskCorrupter interface {
	CorruptDisk(ctx context.Context, disk, glob string, block int64, seed uint64) (string, error)
}

// DiskMover moves a lost machine's disks to a spare node: the lost node
// (stopped) loses what its disks had not synced, as in a power cut, and
// the spare is then started on the same disks. After the move the lost
// node has no disks; starting it again is an error.
type DiskMover interface {
	MoveDisks(ctx context.Context, from, to string) error
}
