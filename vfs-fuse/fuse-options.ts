/**
 * Mount options CloudFS passes to libfuse 2. fuse-native builds its `-o` string in
 * `Fuse.prototype._fuseOptions()` from a fixed list of its own options, and hands that one string to
 * `fuse_mount()` and `fuse_new()` (fuse-native.c), which parse *every* libfuse option in it. So a
 * subclass that appends to that string (see `mount.ts`) reaches all of libfuse — `big_writes` included,
 * which fuse-native has no option for. Without it the kernel sends 4 KiB writes (≈ 75 MB/s).
 */
export interface FuseMountTuning {
  /** Seconds the kernel caches a name → inode lookup. */
  readonly entryTimeoutSec: number;
  /** Seconds the kernel caches attributes; 0 makes every stat ask us. */
  readonly attrTimeoutSec: number;
}

/** Stock fuse-native cannot tell the kernel what changed: no cached attributes, names for 1 s. */
export const UNCACHED_FUSE_TUNING: FuseMountTuning = { entryTimeoutSec: 1, attrTimeoutSec: 0 };

/**
 * CloudFS's build of fuse-native tells the kernel what changed (`native/kernel-channel.c`): an inode's
 * attributes on every open, and any inode or name the metadata watch sees change. The timeouts only
 * bound a missed invalidation (an inode whose kernel node id was never learnt).
 */
export const CACHED_FUSE_TUNING: FuseMountTuning = { entryTimeoutSec: 10, attrTimeoutSec: 10 };

/** 128 KiB: the most the kernel's FUSE (32 pages per request by default) sends in one WRITE/READ. */
export const FUSE_MAX_IO_BYTES = 128 * 1024;

export function cloudFsMountOptions(tuning: FuseMountTuning): string[] {
  return [
    "fsname=cloudfs",
    "subtype=cloudfs",
    // Writes arrive in 128 KiB pieces instead of 4 KiB ones.
    "big_writes",
    `max_write=${FUSE_MAX_IO_BYTES}`,
    `max_read=${FUSE_MAX_IO_BYTES}`,
    "max_readahead=1048576",
    // Every user of the node sees the mount; the kernel checks mode/uid/gid from our attributes.
    "allow_other",
    "default_permissions",
    // Our inode numbers in st_ino, so hard links show the same inode on every node.
    "use_ino",
    // Keep the page cache across opens unless size or mtime changed (checked on every open).
    "auto_cache",
    `entry_timeout=${tuning.entryTimeoutSec}`,
    `attr_timeout=${tuning.attrTimeoutSec}`,
    `ac_attr_timeout=0`,
    "negative_timeout=0",
  ];
}
