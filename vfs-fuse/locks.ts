/**
 * File locks across nodes: the lock table of one inode, as its record keeps it (`InodeRecord.locks`),
 * and the rules of POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK, OFD locks) and of flock(2).
 *
 * The table lives in the inode's record, so it is changed as every inode is: under the lease of the
 * inode's home directory (leases.ts), journaled, and handed to the next node that asks with the lease.
 * A lock names the node and the daemon's session that took it, so a lock of a lost node or of a
 * daemon that was restarted (its processes' files are gone) counts no more (core.ts checks liveness).
 *
 * As on Linux, flock locks and POSIX locks are separate: neither blocks the other.
 */

export type LockKind = "posix" | "flock";
export type LockType = "r" | "w";

/** Offset of the last byte a lock to the end of the file covers (any later byte). */
export const LOCK_TO_EOF = Number.MAX_SAFE_INTEGER;

export interface FileLock {
  readonly kind: LockKind;
  readonly type: LockType;
  /** The node whose process holds it, and that node's CloudFS session (one per daemon start). */
  readonly node: string;
  readonly session: string;
  /** The kernel's lock owner on that node (a process's file table, or an open file description). */
  readonly owner: string;
  /** The holder's pid on its node, in the mount's PID namespace (F_GETLK from that node names it). */
  readonly pid: number;
  /** First and last byte covered, inclusive; flock locks cover the whole file. */
  readonly start: number;
  readonly end: number;
}

/** What one request asks for: a lock, or `type: "u"` to unlock the range. */
export type LockRequest = Omit<FileLock, "type"> & { readonly type: LockType | "u" };

const sameOwner = (a: Pick<FileLock, "kind" | "node" | "session" | "owner">, b: Pick<FileLock, "kind" | "node" | "session" | "owner">): boolean =>
  a.kind === b.kind && a.node === b.node && a.session === b.session && a.owner === b.owner;

const overlaps = (a: { start: number; end: number }, b: { start: number; end: number }): boolean => a.start <= b.end && b.start <= a.end;

/** The first lock of another owner that keeps `req` from being granted, if any. */
export function conflictingLock(locks: readonly FileLock[], req: LockRequest): FileLock | undefined {
  if (req.type === "u") return undefined;
  return locks.find((l) => l.kind === req.kind && !sameOwner(l, req) && overlaps(l, req) && (l.type === "w" || req.type === "w"));
}

/**
 * The table after `req` is granted (call only when `conflictingLock` found none): the owner's own
 * locks of that kind in the range are replaced (a lock upgrades, downgrades, or is split around an
 * unlock, as POSIX has it), then the new lock is added; the owner's adjoining locks of one type merge.
 */
export function applyLock(locks: readonly FileLock[], req: LockRequest): FileLock[] {
  const out: FileLock[] = [];
  for (const l of locks) {
    if (!sameOwner(l, req) || !overlaps(l, req)) {
      out.push(l);
      continue;
    }
    // The parts of the owner's lock outside the request stay.
    if (l.start < req.start) out.push({ ...l, end: req.start - 1 });
    if (l.end > req.end) out.push({ ...l, start: req.end + 1 });
  }
  if (req.type === "u") return out;
  let lock: FileLock = { kind: req.kind, type: req.type, node: req.node, session: req.session, owner: req.owner, pid: req.pid, start: req.start, end: req.end };
  const merged: FileLock[] = [];
  for (const l of out) {
    const adjoins = sameOwner(l, lock) && l.type === lock.type && l.start <= lock.end + 1 && lock.start <= l.end + 1;
    if (adjoins) lock = { ...lock, start: Math.min(l.start, lock.start), end: Math.max(l.end, lock.end) };
    else merged.push(l);
  }
  merged.push(lock);
  return merged;
}

/** Whether `owner` holds any lock in the table (an unlock of nothing changes nothing). */
export function holdsAny(locks: readonly FileLock[], who: Pick<FileLock, "node" | "session" | "owner">): boolean {
  return locks.some((l) => l.node === who.node && l.session === who.session && l.owner === who.owner);
}

/** The byte range of an fcntl lock (`start`, `len` as `struct flock` has them after SEEK_SET), or EINVAL. */
export function fcntlRange(start: number, len: number): { start: number; end: number } | undefined {
  if (len === 0) return start < 0 ? undefined : { start, end: LOCK_TO_EOF };
  // A negative length covers the bytes before `start`.
  const [from, to] = len > 0 ? [start, start + len - 1] : [start + len, start - 1];
  if (from < 0) return undefined;
  return { start: from, end: Math.min(to, LOCK_TO_EOF) };
}

/** Whether a value read from a record is a lock table (anything else is dropped, never trusted). */
export function parseLocks(v: unknown): FileLock[] {
  if (!Array.isArray(v)) return [];
  return v.filter(
    (l): l is FileLock =>
      typeof l === "object" &&
      l !== null &&
      (l.kind === "posix" || l.kind === "flock") &&
      (l.type === "r" || l.type === "w") &&
      typeof l.node === "string" &&
      typeof l.session === "string" &&
      typeof l.owner === "string" &&
      typeof l.pid === "number" &&
      typeof l.start === "number" &&
      typeof l.end === "number",
  );
}
