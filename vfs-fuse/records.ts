import { pack, unpack } from "msgpackr";
import { FsError } from "./errors.js";
import type { FileLock } from "./locks.js";
import { bytesToName } from "./name-codec.js";

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** The special files (mknod) are names and attributes only: the kernel of the node that opens one serves it. */
export type InodeType = "file" | "dir" | "symlink" | "fifo" | "socket" | "chr" | "blk";

const TYPE_BITS: Readonly<Record<InodeType, number>> = {
  file: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  fifo: S_IFIFO,
  socket: S_IFSOCK,
  chr: S_IFCHR,
  blk: S_IFBLK,
};

/** The type of a mode's S_IFMT bits, or undefined for none CloudFS stores. */
export function typeOfMode(mode: number): InodeType | undefined {
  const bits = mode & S_IFMT;
  return (Object.keys(TYPE_BITS) as InodeType[]).find((t) => TYPE_BITS[t] === bits);
}

/** One inode as stored under `i.<ino>` in the metadata bucket. */
export interface InodeRecord {
  readonly type: InodeType;
  /** Permission bits only (07777); the type lives in `type`. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /**
   * The nanoseconds within the millisecond of a time set by utimensat (`touch -d`, `tar -x`): [the
   * ms it belongs to, 0–999999]. It counts only while that time is still `atimeMs`/`mtimeMs`, so a
   * change that sets the time to now needs not clear it (see `subMs`).
   */
  atimeNs?: readonly [number, number];
  mtimeNs?: readonly [number, number];
  /** Block index → immutable block id; missing indexes are holes (sparse files). */
  blocks: Record<string, string>;
  /** A symlink's target: its bytes when they are not UTF-8 (see `symlinkTarget`). */
  target?: string | Uint8Array;
  /** A device node's device number (st_rdev). */
  rdev?: number;
  /** Extended attributes (`user.*`, `trusted.*`): name → value. */
  xattrs?: Record<string, Uint8Array>;
  /** Node that holds an unlinked-but-open inode (nlink 0); it deletes the inode at close or next mount. */
  orphanOf?: string;
  /**
   * The directory the inode was made in: its lease covers this record (see leases.ts). Kept across
   * renames and links; absent on `/` and `/home`, which `/`'s lease covers.
   */
  home?: number;
  /** The node that wrote the newest blocks: its cache holds them, and other nodes ask it first. */
  cachedOn?: string;
  /** flock and POSIX locks held on the file, by processes on any node (locks.ts). */
  locks?: FileLock[];
}

/** A directory entry under `d.<parent>.<encoded name>`. */
export interface DirEntryRecord {
  readonly ino: number;
  readonly type: InodeType;
}

/** A symlink's target in the core's string form (name-codec.ts). */
export function symlinkTarget(rec: InodeRecord): string {
  return typeof rec.target === "string" ? rec.target : rec.target === undefined ? "" : bytesToName(rec.target);
}

export function typeBits(type: InodeType): number {
  return TYPE_BITS[type];
}

export function encodeInode(rec: InodeRecord): Uint8Array {
  return pack(rec);
}

export function decodeInode(bytes: Uint8Array): InodeRecord {
  const v: unknown = unpack(bytes);
  if (typeof v !== "object" || v === null) throw new FsError("EIO", "corrupt inode record");
  const r = v as Partial<InodeRecord>;
  if (
    typeof r.type !== "string" ||
    !Object.hasOwn(TYPE_BITS, r.type) ||
    typeof r.mode !== "number" ||
    typeof r.size !== "number" ||
    typeof r.nlink !== "number" ||
    typeof r.blocks !== "object"
  ) {
    throw new FsError("EIO", "corrupt inode record");
  }
  return r as InodeRecord;
}

export function encodeDirEntry(e: DirEntryRecord): Uint8Array {
  return pack(e);
}

export function decodeDirEntry(bytes: Uint8Array): DirEntryRecord {
  const v = unpack(bytes) as Partial<DirEntryRecord> | null;
  if (v === null || typeof v !== "object" || typeof v.ino !== "number" || typeof v.type !== "string") {
    throw new FsError("EIO", "corrupt directory entry");
  }
  return v as DirEntryRecord;
}

/**
 * A directory's own mtime and ctime under `t.<dir>`: set with every entry made or removed in it, under
 * the directory's own lease, which the change holds anyway (the directory's inode record is under its
 * parent's lease, which a create in it must not need). Absent until the first such change.
 */
export interface DirTimesRecord {
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  /** As InodeRecord's: the nanoseconds of an mtime set by utimensat. */
  readonly mtimeNs?: readonly [number, number];
}

/** A time with nanoseconds, as utimensat sets it: whole ms, and 0–999999 ns within it. */
export interface NsTime {
  readonly ms: number;
  readonly ns: number;
}

/** The nanoseconds within `ms` that `pair` records for it; 0 when it was recorded for another time. */
export function subMs(ms: number, pair: readonly [number, number] | undefined): number {
  return isNsPair(pair) && pair[0] === ms ? pair[1] : 0;
}

/** A time as kept in a record: whole ms, and the [ms, ns] pair only when it has nanoseconds. */
export function splitNsTime(t: NsTime): { ms: number; ns?: readonly [number, number] } {
  const ms = Math.floor(t.ms);
  const ns = Math.min(999_999, Math.max(0, Math.floor(t.ns)));
  return ns === 0 ? { ms } : { ms, ns: [ms, ns] };
}

function isNsPair(v: unknown): v is readonly [number, number] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "number";
}

export function encodeDirTimes(t: DirTimesRecord): Uint8Array {
  return pack(t);
}

export function decodeDirTimes(bytes: Uint8Array): DirTimesRecord {
  const v = unpack(bytes) as Partial<DirTimesRecord> | null;
  if (v === null || typeof v !== "object" || typeof v.mtimeMs !== "number" || typeof v.ctimeMs !== "number") {
    throw new FsError("EIO", "corrupt directory times");
  }
  return { mtimeMs: v.mtimeMs, ctimeMs: v.ctimeMs, ...(isNsPair(v.mtimeNs) ? { mtimeNs: v.mtimeNs } : {}) };
}

/** Metadata bucket keys. */
export const ROOT_INO = 1;
export const INO_COUNTER_KEY = "ino-next";
export const inodeKey = (ino: number): string => `i.${ino}`;
export const dirEntryKey = (parent: number, encodedName: string): string => `d.${parent}.${encodedName}`;
export const dirTimesKey = (dir: number): string => `t.${dir}`;
/** A directory's lease: which node may change it without asking (leases.ts). */
export const leaseKey = (dir: number): string => `l.${dir}`;
/** A node's liveness record, renewed every second while it holds leases. */
export const heartbeatKey = (node: string): string => `n.${node}`;

/** The directory whose lease covers an inode's record. */
export const homeOf = (rec: InodeRecord): number => rec.home ?? ROOT_INO;

export function newInode(type: InodeType, mode: number, uid: number, gid: number, now = Date.now()): InodeRecord {
  return {
    type,
    mode: mode & 0o7777,
    uid,
    gid,
    size: 0,
    nlink: type === "dir" ? 2 : 1,
    atimeMs: now,
    mtimeMs: now,
    ctimeMs: now,
    blocks: {},
  };
}
