import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { BLOCK_SIZE } from "./block-math.js";
import { BlockLinks } from "./block-link.js";
import { BlockStore } from "./block-store.js";
import { ensureCloudFsBuckets, META_BUCKET, type CloudFsBuckets } from "./buckets.js";
import { DiskBlockCache } from "./disk-block-cache.js";
import { FsError } from "./errors.js";
import { DirectoryLeases, LEASE_TTL_MS } from "./leases.js";
import { OrphanReaper } from "./orphans.js";
import { AccessTimes } from "./atime.js";
import { applyLock, conflictingLock, holdsAny, LOCK_TO_EOF, parseLocks, type FileLock, type LockKind, type LockRequest } from "./locks.js";
import { cloneInode, kvMessageAt, MetaStore, type MetaChange, type Versioned } from "./meta-store.js";
import type { CacheHolders } from "./change-notices.js";
import { bytesToName, decodeName, encodeName, NAME_MAX_BYTES, nameToBytes, splitPath } from "./name-codec.js";
import { OpenFile, type InodeCommit } from "./open-file.js";
import { servePeerRequests, type CloudFsNodeStatus } from "./peer-service.js";
import { isOwnerOrRoot, mayAccess, R_OK, ROOT_CRED, W_OK, X_OK, type Cred } from "./permissions.js";
import { decodeDirEntry, dirTimesKey, homeOf, inodeKey, leaseKey, newInode, ROOT_INO, S_IFREG, splitNsTime, subMs, symlinkTarget, typeBits, typeOfMode, type DirEntryRecord, type InodeRecord, type NsTime } from "./records.js";
import type { JournalOp } from "./journal-log.js";
import { WriteBack, type WriteBackStatus } from "./write-back.js";

/** setxattr(2) flags. */
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** All of an inode's extended attributes, names and values: as ext4 allows in one block, about. */
const MAX_XATTR_BYTES = 64 * 1024;

/**
 * An extended attribute's name if CloudFS keeps its namespace: `user.*` and `trusted.*` (the kernel
 * checks who may touch which). POSIX ACLs and `security.*` are refused (EOPNOTSUPP): not enforced.
 */
function xattrName(name: string): string {
  if (!name.startsWith("user.") && !name.startsWith("trusted.")) throw new FsError("EOPNOTSUPP", name);
  return name;
}

export interface FsStat {
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly atime: Date;
  readonly mtime: Date;
  readonly ctime: Date;
  /** The nanoseconds within the millisecond of atime and mtime (utimensat keeps them as set). */
  readonly atimeNs?: number;
  readonly mtimeNs?: number;
  readonly blocks: number;
  readonly blksize: number;
  /** A device node's device number; 0 otherwise. */
  readonly rdev: number;
}

export interface FsStatfs {
  readonly bsize: number;
  readonly frsize: number;
  readonly blocks: number;
  readonly bfree: number;
  readonly bavail: number;
  readonly files: number;
  readonly ffree: number;
  readonly favail: number;
  readonly fsid: number;
  readonly flag: number;
  readonly namemax: number;
}

export interface CloudFsCoreOptions {
  readonly nc: NatsConnection;
  /** Directory of the node's block cache (emptied at start). */
  readonly cacheDir: string;
  /** Size cap of the block cache on disk. */
  readonly cacheBytes?: number;
  /** Names this node in orphan records; default: a random id. */
  readonly nodeId?: string;
  /** Replicas for the buckets if this node creates them. */
  readonly replicas?: number;
  /** Longest wait for one NATS operation before an op fails with EIO. */
  readonly opTimeoutMs?: number;
  /** Already opened buckets (skips `ensureCloudFsBuckets`). */
  readonly buckets?: CloudFsBuckets;
  /**
   * The node's journal and dirty blocks, kept across restarts (a restart stores what a crash left);
   * default: `<cacheDir>-journal`.
   */
  readonly journalDir?: string;
  /** Strict mode: every change, and so every close, waits until JetStream has stored it. */
  readonly strict?: boolean;
  /**
   * Address on which this node serves its cached blocks to peers over direct links (the node's data
   * address, as its runtime's streams use); without it, peers ask over NATS.
   */
  readonly dataHost?: string;
}

/** Longest a clean close waits for the write-back to store what the node still holds. */
const CLOSE_SYNC_MS = 60_000;

/** Default per-op bound on waiting for NATS: long enough for a leader election, short enough for a user. */
export const DEFAULT_OP_TIMEOUT_MS = 10_000;
/** Default block cache size on disk. */
export const DEFAULT_CACHE_BYTES = 2 * 1024 * 1024 * 1024;
/** Symlinks followed in one path walk before ELOOP, as Linux's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;
/** libfuse 2 renames an open file it is asked to unlink to this name (no hard_remove): we hide it. */
const FUSE_HIDDEN = /^\.fuse_hidden[0-9a-f]{16}$/;

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;

/** A lease changed hands while an operation looked: it looks again. */
class Moved extends Error {}

/** Who owns a new node. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

interface Resolved {
  readonly ino: number;
  readonly inode: Versioned<InodeRecord>;
  /** Parent directory and encoded name; absent for `/` and for hidden orphans. */
  readonly parent?: number;
  readonly name?: string;
  readonly entryRev?: number;
}

interface Handle {
  readonly file: OpenFile;
  readonly flags: number;
  /** The path it was opened by (libfuse names an open file by it: see `getattr`). */
  readonly path: string;
  /** POSIX lock owners that locked through this handle (an OFD lock's owner is its handle's). */
  lockOwners?: Set<string>;
  /** Read through already: its first read moved the atime (relatime), later ones need not look. */
  read?: boolean;
}

/** A lock request as the kernel makes it (fcntl, OFD or flock), for `CloudFsCore.lock`. */
export interface LockCall {
  readonly kind: LockKind;
  /** `get`: F_GETLK; `set`: F_SETLK / LOCK_NB (EAGAIN when taken); `wait`: F_SETLKW / a blocking flock. */
  readonly cmd: "get" | "set" | "wait";
  readonly type: "r" | "w" | "u";
  readonly start: number;
  readonly end: number;
  /** The kernel's lock owner (a process's file table, an open file description). */
  readonly owner: string;
  /** The caller's pid in the mount's PID namespace. */
  readonly pid: number;
  /** For `wait`: whether a signal came to the caller (the kernel's FUSE_INTERRUPT); it then ends with EINTR. */
  readonly interrupted?: () => boolean;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** How often a blocked lock looks again when no change notice wakes it first. */
const LOCK_RETRY_MS = 500;
/** How often a blocked lock request looks for a signal to its caller. */
const INTERRUPT_POLL_MS = 100;

/**
 * CloudFS without FUSE: every POSIX operation on absolute CloudFS paths, with permission checks for a
 * caller's credentials. The FUSE mount, the web desktop and the shell all use this.
 */
export class CloudFsCore {
  readonly #handles = new Map<number, Handle>();
  readonly #open = new Map<number, OpenFile>();
  /** Path → the handles opened by it. */
  readonly #handlesAt = new Map<string, Set<number>>();
  /** Paths libfuse gave to unlinked-but-open files → their inode (never listed, never in JetStream). */
  readonly #hidden = new Map<string, number>();
  #nextFh = 1;
  #closed = false;
  readonly #unwatch: () => void;
  #unserve: () => void = () => {};
  /** Deletes files whose last name is gone once no node has them open (orphans.ts). */
  #reaper: OrphanReaper | undefined;
  /** Access times moved by reads (relatime; atime.ts). */
  #atimes: AccessTimes | undefined;
  /** Blocked lock requests per inode, woken by any change to it. */
  readonly #lockWaiters = new Map<number, Set<() => void>>();
  /** Runs (node/session) found not running: their locks are void. */
  readonly #deadLockHolders = new Set<string>();
  /** Files made here and not yet committed: their names wait for the first commit (write-back.ts). */
  readonly #newFiles = new Map<number, { readonly done: Promise<string | undefined>; readonly resolve: (key: string | undefined) => void }>();

  private constructor(
    readonly meta: MetaStore,
    readonly blocks: BlockStore,
    private readonly links: BlockLinks,
    private readonly disk: DiskBlockCache,
    readonly nodeId: string,
    private readonly writeBack: WriteBack,
    private readonly leases: DirectoryLeases,
    readonly strict: boolean,
  ) {
    this.#unwatch = meta.onChange((change) => {
      if (change.kind !== "inode") return;
      this.wakeLockWaiters(change.ino);
      const f = this.#open.get(change.ino);
      const cur = meta.inode(change.ino);
      if (f !== undefined && cur !== undefined && !f.dirty) f.refresh(cur.value);
    });
  }

  static async open(options: CloudFsCoreOptions): Promise<CloudFsCore> {
    const opTimeoutMs = options.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
    const buckets =
      options.buckets ??
      (await ensureCloudFsBuckets(options.nc, {
        ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
        timeoutMs: opTimeoutMs,
      }));
    const nodeId = options.nodeId ?? `node-${Math.random().toString(36).slice(2)}`;
    const strict = options.strict ?? false;
    const meta = new MetaStore(buckets.meta, buckets.locks, opTimeoutMs, (seq) => kvMessageAt(options.nc, META_BUCKET, seq, opTimeoutMs));
    const disk = await DiskBlockCache.open(options.cacheDir, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    const { writeBack, leftover } = await WriteBack.open({
      nc: options.nc,
      meta: buckets.meta,
      blocks: buckets.blocks,
      dir: options.journalDir ?? `${options.cacheDir}-journal`,
      disk,
      publishTimeoutMs: opTimeoutMs,
      onStored: (op, rev) => meta.onStored(op, rev),
    });
    const leases = new DirectoryLeases(options.nc, buckets.meta, meta, writeBack, nodeId, opTimeoutMs, randomBytes(8).toString("hex"));
    // Attached before the replica loads, so the lease table sees every lease record.
    meta.attach({ writeBack, strict, onLeaseRecord: (dir, value, rev) => leases.onLeaseRecord(dir, value, rev) });
    await meta.start();
    const blocks: BlockStore = new BlockStore(buckets.blocks, disk, opTimeoutMs, (id) => writeBack.staged(id), (node, id, timeoutMs) => links.get(node, id, timeoutMs));
    const links = await BlockLinks.start(options.nc, nodeId, options.dataHost, (id) => blocks.cached(id));
    const core = new CloudFsCore(meta, blocks, links, disk, nodeId, writeBack, leases, strict);
    writeBack.holdBack = (op) => core.#holdBack(op);
    writeBack.onBlockStored = (id, data) => blocks.remember(id, data);
    writeBack.onBlockFreed = (id) => blocks.forget(id);
    try {
      await leases.start();
      await core.#resume(leftover);
      core.#reaper = new OrphanReaper({
        nc: options.nc,
        nodeId,
        nodes: () => meta.nodesBeatingWithin(LEASE_TTL_MS),
        openHere: (ino) => core.#open.has(ino),
        destroy: (inodes) => core.#reap(inodes),
        keep: (inodes) => core.#markOrphans(inodes),
      });
      core.#atimes = new AccessTimes({
        nc: options.nc,
        inode: (ino) => meta.inode(ino)?.value,
        otherHolder: (dir) => leases.otherHolder(dir),
        heldBySelf: (dir) => leases.heldBySelf(dir),
        changeAll: (inodes, change) =>
          core.#underHomeLeases(inodes, (ino, rec) => {
            const fn = change(ino, rec);
            return fn === undefined ? undefined : core.#mutateInode(ino, fn).then(() => {});
          }),
        changedForPeer: (ino) => core.invalidateKernel?.(ino),
      });
      core.#unserve = servePeerRequests(options.nc, nodeId, {
        recall: (req) => leases.serveRecall(req),
        status: () => core.status(),
        block: (id) => blocks.cached(id),
        opened: (inodes) => inodes.filter((ino) => core.#open.has(ino)),
        accessed: (inodes) => core.#atimes?.readElsewhere(inodes),
      });
      await core.#collectOwnOrphans();
    } catch (err) {
      leases.close();
      await links.close();
      await writeBack.close();
      await meta.close();
      throw err;
    }
    return core;
  }

  /**
   * Sends again what a previous run journaled and did not store (a crash of the software loses
   * nothing), except what was made under a lease another node holds now: this node was lost for
   * longer than the lease TTL and the directory went on without it.
   */
  async #resume(leftover: Awaited<ReturnType<typeof WriteBack.open>>["leftover"]): Promise<void> {
    const kept = leftover.filter((op) => this.leases.otherHolder(op.lease) === undefined);
    const own = new Set(kept.filter((op) => op.key.startsWith("l.")).map((op) => Number(op.key.slice(2))));
    for (const op of kept) this.meta.applyReplayed(op);
    this.writeBack.resume(kept);
    // A lease whose record JetStream lacks (and the journal does not bring) is taken again first.
    for (const dir of new Set(kept.map((op) => op.lease))) {
      if (own.has(dir) || this.leases.heldBySelf(dir)) continue;
      await this.leases.withLeases([dir], async () => {});
    }
    if (leftover.length > kept.length) {
      process.stderr.write(`cloudfs: ${leftover.length - kept.length} journaled changes dropped: their directories were taken over while this node was lost\n`);
    }
  }

  #holdBack(op: JournalOp): Promise<string | undefined> | undefined {
    // Strict mode stores each change before returning: nothing may wait for a later one.
    if (this.strict || !op.key.startsWith("d.") || op.value === null || this.#newFiles.size === 0) return undefined;
    return this.#newFiles.get(decodeDirEntry(op.value).ino)?.done;
  }

  #newFileDone(ino: number, commitKey: string | undefined): void {
    this.#newFiles.get(ino)?.resolve(commitKey);
    this.#newFiles.delete(ino);
  }

  /**
   * Which other nodes' kernels may have cached what `change` touched: those that looked into the
   * directory lately (which they can only do by asking this node, its lease holder, or the holder
   * before it), or anyone when this node took the lease from nobody lately. An inode counts under its
   * home directory (a node that stats it elsewhere catches up with its home too).
   */
  cacheHolders(change: MetaChange): CacheHolders {
    const rec = change.kind === "inode" ? this.meta.inode(change.ino)?.value : undefined;
    if (change.kind === "inode" && rec === undefined) return { nodes: [], anyone: true };
    const dir = change.kind === "entry" ? change.parent : homeOf(rec!);
    return { nodes: this.leases.observersOf(dir), anyone: this.leases.observedByAnyone(dir) };
  }

  /** A change notice came (change-notices.ts): what this node caught up with may be stale. */
  noticed(): void {
    this.leases.noticed();
  }

  /**
   * Set by a mount: drops what this node's kernel caches of an inode that this node changed for
   * another (its own changes come through the kernel, which knows what they left).
   */
  invalidateKernel: ((ino: number) => void) | undefined;

  /** Set by a mount: this node's kernel caches what it reads, so lease holders tell it of changes. */
  set cachesInKernel(on: boolean) {
    this.leases.cachesInKernel = on;
  }

  /** The node's write-back state: dirty bytes, oldest unstored change, leases held. */
  status(): CloudFsNodeStatus {
    return { ...this.writeBack.status(), node: this.nodeId, leases: this.leases.heldCount(), strict: this.strict };
  }

  writeBackStatus(): WriteBackStatus {
    return this.writeBack.status();
  }

  /** Resolves once everything this node did so far is stored in JetStream (syncfs), a removed file's deletion too. */
  async sync(): Promise<void> {
    await this.#reaper?.settled();
    await this.writeBack.sync();
  }

  /** Files this node unlinked or closed last and had not deleted when it stopped: asked about again. */
  async #collectOwnOrphans(): Promise<void> {
    for (const [ino, v] of [...this.meta.allInodes()]) {
      if (v.value.nlink === 0 && v.value.orphanOf === this.nodeId) this.#reaper?.add(ino);
    }
  }

  /** Files with no name left that another node has open: nlink 0, and this node answers for them. */
  async #markOrphans(inodes: readonly number[]): Promise<void> {
    await this.#underHomeLeases(inodes, (ino, rec) =>
      rec.nlink === 0 && rec.orphanOf !== undefined
        ? undefined
        : this.#mutateInode(ino, (r) => {
            r.nlink = 0;
            r.ctimeMs = Date.now();
            r.orphanOf = this.nodeId;
          }).then(() => {}),
    );
  }

  /**
   * Deletes files with no link left that no node has open (the reaper asked); returns those that
   * could not be (asked about again later).
   */
  async #reap(inodes: readonly number[]): Promise<number[]> {
    // Its last name is gone (`#dropLink` leaves the record of a file not open here as it was).
    return await this.#underHomeLeases(inodes, (ino, rec) =>
      rec.nlink <= 1 && !this.#open.has(ino) ? this.#destroyInode(ino, rec) : undefined,
    );
  }

  /**
   * Runs `change` on each inode's current record under its home lease, taken once for all of a
   * directory's (an rm -rf's thousands share a few); returns the inodes whose lease or change failed.
   */
  async #underHomeLeases(inodes: readonly number[], change: (ino: number, rec: InodeRecord) => Promise<void> | undefined): Promise<number[]> {
    const byHome = new Map<number, number[]>();
    for (const ino of inodes) {
      const rec = this.meta.inode(ino)?.value;
      if (rec === undefined) continue;
      const list = byHome.get(homeOf(rec));
      if (list === undefined) byHome.set(homeOf(rec), [ino]);
      else list.push(ino);
    }
    const failed: number[] = [];
    for (const [home, list] of byHome) {
      await this.leases
        .withLeases([home], async () => {
          await Promise.all(
            list.map((ino) => {
              const cur = this.meta.inode(ino)?.value;
              return cur === undefined ? undefined : change(ino, cur);
            }),
          );
        })
        .catch(() => failed.push(...list));
    }
    return failed;
  }

  /**
   * A name in a directory, as current as close-to-open needs: from the replica when it has it or this
   * node holds the directory's lease (then a miss is authoritative); else after the holder stored what
   * it did there, or from JetStream when nobody holds it.
   */
  async #lookup(dir: number, name: string): Promise<Versioned<DirEntryRecord> | undefined> {
    const e = this.meta.entry(dir, name);
    if (e !== undefined || this.leases.heldOrStale(dir)) return e;
    if (await this.#catchUp(dir)) return this.meta.entry(dir, name);
    return this.meta.fetchEntry(dir, name);
  }

  /**
   * Brings what another node did under `dir`'s lease into the replica; false when nobody else holds
   * it (then JetStream has it all). The lease record may not have reached this replica yet (the
   * directory was found with a direct read): it is read from JetStream then.
   */
  async #catchUp(dir: number): Promise<boolean> {
    if (this.leases.heldOrStale(dir)) return false;
    if (this.leases.otherHolder(dir) === undefined) await this.meta.fetchKey(leaseKey(dir)).catch(() => {});
    return this.leases.catchUp(dir);
  }

  /** Read-modify-write of an inode whose home lease the caller holds. */
  async #mutateInode(ino: number, fn: (rec: InodeRecord) => void): Promise<InodeRecord> {
    const cur = this.meta.inode(ino);
    if (cur === undefined) throw new FsError("ENOENT", `inode ${ino} is gone`);
    const rec = cloneInode(cur.value);
    fn(rec);
    await this.meta.putInode(ino, rec, homeOf(rec));
    return rec;
  }

  /** Stamps a directory's mtime and ctime: an entry was made or removed in it (its lease held). */
  #touchDir(dir: number): Promise<void> {
    const now = Date.now();
    return this.meta.putDirTimes(dir, { mtimeMs: now, ctimeMs: now });
  }

  /** Takes the inode's home lease and changes the record. */
  #changeInode(ino: number, rec: InodeRecord, fn: (rec: InodeRecord) => void): Promise<InodeRecord> {
    return this.leases.withLeases([homeOf(rec)], () => this.#mutateInode(ino, fn));
  }

  // ---- path resolution ------------------------------------------------------------------------

  async #resolve(path: string, cred: Cred, followLast = true, depth = 0): Promise<Resolved> {
    const hidden = this.#hidden.get(path);
    if (hidden !== undefined) {
      const inode = this.meta.inode(hidden);
      if (inode === undefined) throw new FsError("ENOENT", path);
      return { ino: hidden, inode };
    }
    const parts = splitPath(path);
    let cur: Resolved = { ino: ROOT_INO, inode: this.#inode(ROOT_INO) };
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (cur.inode.value.type !== "dir") throw new FsError("ENOTDIR", path);
      if (!mayAccess(cur.inode.value, cred, X_OK)) throw new FsError("EACCES", path);
      if (part === "..") {
        const up = "/" + parts.slice(0, Math.max(0, i - 1)).join("/") + (i + 1 < parts.length ? "/" + parts.slice(i + 1).join("/") : "");
        return this.#resolve(up, cred, followLast, depth);
      }
      const name = encodeName(part);
      // The replica's answer needs no await (most lookups): only a miss may ask another node.
      const e = this.meta.entry(cur.ino, name) ?? (await this.#lookup(cur.ino, name));
      if (e === undefined) throw new FsError("ENOENT", path);
      const inode = this.meta.inode(e.value.ino) ?? (await this.meta.fetchInode(e.value.ino));
      if (inode === undefined) throw new FsError("ENOENT", path);
      const last = i === parts.length - 1;
      if (inode.value.type === "symlink" && (!last || followLast)) {
        if (depth >= MAX_SYMLINKS) throw new FsError("ELOOP", path);
        const target = symlinkTarget(inode.value);
        const base = target.startsWith("/") ? target : "/" + [...parts.slice(0, i), target].join("/");
        const rest = parts.slice(i + 1).join("/");
        return this.#resolve(rest === "" ? base : `${base}/${rest}`, cred, followLast, depth + 1);
      }
      cur = { ino: e.value.ino, inode, parent: cur.ino, name, entryRev: e.rev };
    }
    return cur;
  }

  /**
   * Resolves `path` with its last name as its directory's holder has it (close-to-open for names:
   * another node may have renamed a new file over it, as editors and git do when they save).
   */
  async #resolveCurrent(path: string, cred: Cred, followLast = true): Promise<Resolved> {
    const r = await this.#resolve(path, cred, followLast);
    if (r.parent === undefined || this.leases.heldOrStale(r.parent) || !(await this.#catchUp(r.parent))) return r;
    return this.#resolve(path, cred, followLast);
  }

  /** Resolves the parent directory of `path` and checks the caller may change it (w+x). */
  async #parentFor(path: string, cred: Cred): Promise<{ dir: Resolved; name: string; rawName: string }> {
    const parts = splitPath(path);
    const rawName = parts.pop();
    if (rawName === undefined) throw new FsError("EEXIST", "/ always exists");
    if (nameToBytes(rawName).length > NAME_MAX_BYTES) throw new FsError("ENAMETOOLONG", rawName);
    const dir = await this.#resolve("/" + parts.join("/"), cred);
    if (dir.inode.value.type !== "dir") throw new FsError("ENOTDIR", path);
    return { dir, name: encodeName(rawName), rawName };
  }

  #checkWritableDir(dir: Resolved, cred: Cred): void {
    if (!mayAccess(dir.inode.value, cred, W_OK | X_OK)) throw new FsError("EACCES", "directory not writable");
  }

  #inode(ino: number): Versioned<InodeRecord> {
    const v = this.meta.inode(ino);
    if (v === undefined) throw new FsError("ENOENT", `inode ${ino}`);
    return v;
  }

  #stat(ino: number, rec: InodeRecord): FsStat {
    const open = this.#open.get(ino);
    const size = open?.size ?? rec.size;
    const nlink = rec.type === "dir" ? 2 + this.meta.subdirCount(ino) : rec.nlink;
    // A directory's mtime is its own record's (`t.<dir>`) once it has one; its ctime the later of both.
    const times = rec.type === "dir" ? this.meta.dirTimes(ino) : undefined;
    const allocated = Math.min(size, Object.keys(rec.blocks).length * BLOCK_SIZE);
    const readHere = this.#atimes?.shownMs(ino, rec);
    return {
      ino,
      mode: typeBits(rec.type) | rec.mode,
      uid: rec.uid,
      gid: rec.gid,
      size,
      nlink,
      atime: new Date(readHere ?? rec.atimeMs),
      mtime: new Date(times?.mtimeMs ?? rec.mtimeMs),
      atimeNs: readHere !== undefined ? 0 : subMs(rec.atimeMs, rec.atimeNs),
      mtimeNs: times !== undefined ? subMs(times.mtimeMs, times.mtimeNs) : subMs(rec.mtimeMs, rec.mtimeNs),
      ctime: new Date(Math.max(rec.ctimeMs, times?.ctimeMs ?? 0)),
      blocks: Math.ceil(allocated / 512),
      rdev: rec.rdev ?? 0,
      blksize: 128 * 1024,
    };
  }

  // ---- metadata operations --------------------------------------------------------------------

  /**
   * libfuse 2 names every inode by a path, an open one too: a process's fstat of a file another node
   * unlinked (or renamed over) while it was open here comes as a getattr of the path it was opened
   * by, which no longer leads to it. With `openByPath` (the kernel asked about an inode it holds, not
   * a lookup of a name: fuse-ops.ts tells them apart) that path is then answered with the open file's
   * attributes, so the file stays usable until it is closed, as POSIX has it (see also orphans.ts).
   */
  async getattr(path: string, cred: Cred = ROOT_CRED, options: { openByPath?: boolean } = {}): Promise<FsStat> {
    try {
      return await this.#freshStat(path, cred, false);
    } catch (err) {
      if (options.openByPath !== true || !(err instanceof FsError && err.code === "ENOENT")) throw err;
      for (const fh of this.#handlesAt.get(path) ?? []) {
        if (this.#handles.has(fh)) return await this.fgetattr(fh);
      }
      throw err;
    }
  }

  /** Like `getattr` but follows a final symlink (stat vs lstat). */
  async stat(path: string, cred: Cred = ROOT_CRED): Promise<FsStat> {
    return this.#freshStat(path, cred, true);
  }

  /**
   * Attributes as the lease holders last changed them: the name's directory and the inode's home are
   * caught up first when another node holds them (a stat after another node's rename or close sees
   * it; concurrent stats share the round trip).
   */
  async #freshStat(path: string, cred: Cred, followLast: boolean): Promise<FsStat> {
    const r = await this.#resolveCurrent(path, cred, followLast);
    // Beside the name's directory (caught up above): the inode's home, whose lease covers its record
    // (unless this node holds the file dirty), and a directory itself, whose subdirectories are its
    // link count.
    const dirs = new Set<number>();
    if (!this.#open.get(r.ino)?.dirty) dirs.add(homeOf(r.inode.value));
    if (r.inode.value.type === "dir") dirs.add(r.ino);
    if (r.parent !== undefined) dirs.delete(r.parent);
    for (const dir of dirs) if (!this.leases.heldOrStale(dir)) await this.#catchUp(dir);
    return this.#stat(r.ino, this.meta.inode(r.ino)?.value ?? r.inode.value);
  }

  /** Read-modify-write of one inode under its home lease (the way every inode change is made). */
  async mutateInode(ino: number, fn: (rec: InodeRecord) => void): Promise<InodeRecord> {
    return this.#changeInode(ino, this.#inode(ino).value, fn);
  }

  async fgetattr(fh: number): Promise<FsStat> {
    const h = this.#handle(fh);
    const rec = this.meta.inode(h.file.ino)?.value;
    if (rec === undefined) throw new FsError("ENOENT", `inode ${h.file.ino}`);
    return this.#stat(h.file.ino, rec);
  }

  async access(path: string, mode: number, cred: Cred = ROOT_CRED): Promise<void> {
    const r = await this.#resolve(path, cred);
    if (mode !== 0 && !mayAccess(r.inode.value, cred, mode & 7)) throw new FsError("EACCES", path);
  }

  /** Names in a directory (without `.` and `..`), each with its attributes. */
  async readdir(path: string, cred: Cred = ROOT_CRED): Promise<{ name: string; stat: FsStat }[]> {
    const r = await this.#resolve(path, cred);
    if (!this.leases.heldBySelf(r.ino) && !(await this.#catchUp(r.ino))) await this.meta.ensureFresh();
    if (r.inode.value.type !== "dir") throw new FsError("ENOTDIR", path);
    if (!mayAccess(r.inode.value, cred, R_OK)) throw new FsError("EACCES", path);
    const out: { name: string; stat: FsStat }[] = [];
    for (const [enc, e] of this.meta.entries(r.ino)) {
      const inode = this.meta.inode(e.value.ino);
      if (inode === undefined) continue;
      out.push({ name: bytesToName(decodeName(enc)), stat: this.#stat(e.value.ino, inode.value) });
    }
    return out;
  }

  async #makeNode(path: string, rec: InodeRecord, cred: Cred, beforeJournal?: (ino: number) => void): Promise<number> {
    const { dir, name } = await this.#parentFor(path, cred);
    this.#checkWritableDir(dir, cred);
    return this.leases.withLeases([dir.ino], async () => {
      // Under the lease this node's replica is the directory: a miss here is authoritative.
      if (this.meta.entry(dir.ino, name) !== undefined) throw new FsError("EEXIST", path);
      // setgid directories hand their group down, as on ext4.
      if ((dir.inode.value.mode & 0o2000) !== 0) {
        rec.gid = dir.inode.value.gid;
        if (rec.type === "dir") rec.mode |= 0o2000;
      }
      const ino = await this.meta.allocateIno();
      rec.home = dir.ino;
      beforeJournal?.(ino);
      // Journaled in this order (the calls are made in one turn), so JetStream never holds an entry
      // whose inode or, for a directory, whose lease record it lacks.
      const writes = [this.meta.putInode(ino, rec, dir.ino)];
      if (rec.type === "dir") {
        // A new directory is this node's from the start: nobody else can see it before its entry.
        this.leases.adoptNew(ino);
        writes.push(this.meta.writeKey(leaseKey(ino), DirectoryLeases.encode(this.nodeId), ino));
      }
      writes.push(this.meta.putEntry(dir.ino, name, { ino, type: rec.type }), this.#touchDir(dir.ino));
      await Promise.all(writes);
      return ino;
    });
  }

  /** `owner` (default: `cred`'s ids) owns the new node: the FUSE adapter passes the calling process. */
  async mkdir(path: string, mode: number, cred: Cred = ROOT_CRED, owner: Owner = cred): Promise<void> {
    await this.#makeNode(path, newInode("dir", mode, owner.uid, owner.gid), cred);
  }

  async symlink(target: string, path: string, cred: Cred = ROOT_CRED, owner: Owner = cred): Promise<void> {
    const rec = newInode("symlink", 0o777, owner.uid, owner.gid);
    const bytes = nameToBytes(target);
    // A target that is not UTF-8 is kept as its bytes: a string would lose them on the way to JetStream.
    rec.target = bytes.toString("utf8") === target ? target : bytes;
    rec.size = bytes.length;
    await this.#makeNode(path, rec, cred);
  }

  /** An extended attribute's value; ENODATA if it has none of that name. */
  async getxattr(path: string, name: string, cred: Cred = ROOT_CRED): Promise<Buffer> {
    const r = await this.#resolve(path, cred, false);
    const value = r.inode.value.xattrs?.[xattrName(name)];
    if (value === undefined) throw new FsError("ENODATA", `${path}: ${name}`);
    return Buffer.from(value);
  }

  async listxattr(path: string, cred: Cred = ROOT_CRED): Promise<string[]> {
    const r = await this.#resolve(path, cred, false);
    return Object.keys(r.inode.value.xattrs ?? {});
  }

  /** setxattr(2): `flags` XATTR_CREATE (EEXIST if it has it) or XATTR_REPLACE (ENODATA if not). */
  async setxattr(path: string, name: string, value: Uint8Array, flags: number, cred: Cred = ROOT_CRED): Promise<void> {
    const key = xattrName(name);
    const r = await this.#resolve(path, cred, false);
    await this.#changeInode(r.ino, r.inode.value, (rec) => {
      const has = rec.xattrs?.[key] !== undefined;
      if ((flags & XATTR_CREATE) !== 0 && has) throw new FsError("EEXIST", `${path}: ${name}`);
      if ((flags & XATTR_REPLACE) !== 0 && !has) throw new FsError("ENODATA", `${path}: ${name}`);
      const xattrs = { ...rec.xattrs, [key]: Uint8Array.from(value) };
      const total = Object.entries(xattrs).reduce((n, [k, v]) => n + k.length + v.length, 0);
      if (total > MAX_XATTR_BYTES) throw new FsError("ENOSPC", `${path}: extended attributes beyond ${MAX_XATTR_BYTES} bytes`);
      rec.xattrs = xattrs;
      rec.ctimeMs = Date.now();
    });
  }

  async removexattr(path: string, name: string, cred: Cred = ROOT_CRED): Promise<void> {
    const key = xattrName(name);
    const r = await this.#resolve(path, cred, false);
    await this.#changeInode(r.ino, r.inode.value, (rec) => {
      if (rec.xattrs?.[key] === undefined) throw new FsError("ENODATA", `${path}: ${name}`);
      const { [key]: _gone, ...rest } = rec.xattrs;
      if (Object.keys(rest).length === 0) delete rec.xattrs;
      else rec.xattrs = rest;
      rec.ctimeMs = Date.now();
    });
  }

  // ---- locks ------------------------------------------------------------------------------------

  /**
   * A file lock on an open file (locks.ts): flock, POSIX or OFD, kept in the inode's record under
   * its home lease, so it holds between processes on every node. A `get` answers the first lock that
   * conflicts (undefined: none); a `set` takes the lock or fails with EAGAIN; a `wait` waits for it.
   * A lock of a node that is lost, or of this node's CloudFS before it restarted, counts no more.
   * Taking a lock is a consistency point, as on NFS: the file's record is the newest here after it
   * (and the kernel's pages are dropped, kernel-channel.c); letting one go stores the writes first.
   */
  async lock(fh: number, call: LockCall): Promise<FileLock | undefined> {
    const h = this.#handle(fh);
    const ino = h.file.ino;
    const req: LockRequest = { kind: call.kind, type: call.type, node: this.nodeId, session: this.leases.session, owner: call.owner, pid: call.pid, start: call.start, end: call.end };
    if (call.cmd === "get") {
      const home = homeOf(this.#inode(ino).value);
      if (!this.leases.heldOrStale(home)) await this.#catchUp(home);
      return this.#liveConflict(ino, req);
    }
    if (call.type === "u") {
      // Nothing to let go (every close of a file lets a process's POSIX locks go): no change.
      if (!holdsAny(this.#locksOf(ino), req)) return undefined;
      await h.file.flush();
      await this.#changeLocks(ino, (locks) => applyLock(locks, req));
      return undefined;
    }
    if (call.kind === "posix") (h.lockOwners ??= new Set()).add(call.owner);
    // A lock that changes type lets others in too (sqlite steps down from its write lock to a read
    // lock): what was written under the old one is stored before any change of the table.
    await h.file.flush();
    for (;;) {
      const conflict = await this.#liveConflict(ino, req, true);
      if (conflict === undefined) {
        let raced: FileLock | undefined;
        await this.#changeLocks(ino, (locks) => {
          raced = conflictingLock(locks, req);
          return raced === undefined ? applyLock(locks, req) : locks;
        });
        if (raced === undefined) break;
        continue;
      }
      if (call.cmd === "set") throw new FsError("EAGAIN", `inode ${ino}: locked by a process on ${conflict.node}`);
      // A signal to the waiting process: EINTR (the kernel restarts F_SETLKW for a handler with SA_RESTART).
      if (call.interrupted?.() === true) throw new FsError("EINTR", `inode ${ino}: the wait for the lock was interrupted`);
      await this.#lockChanged(ino, call.interrupted !== undefined ? INTERRUPT_POLL_MS : LOCK_RETRY_MS);
    }
    // A process killed while it waited has closed its files already: what it was granted late is let go.
    if (call.cmd === "wait" && call.pid > 0 && !processExists(call.pid)) {
      await this.#changeLocks(ino, (locks) => applyLock(locks, { ...req, type: "u" }));
      throw new FsError("EINTR", `inode ${ino}: the process waiting for the lock is gone`);
    }
    // The lock is ours: serve the file as the last holder left it.
    const rec = this.meta.inode(ino)?.value;
    if (rec !== undefined && !h.file.dirty) h.file.refresh(rec);
    return undefined;
  }

  /** Lets go of the POSIX locks taken through a handle being released (OFD locks end with it). */
  async #unlockHandle(h: Handle): Promise<void> {
    for (const owner of h.lockOwners ?? []) {
      const req: LockRequest = { kind: "posix", type: "u", node: this.nodeId, session: this.leases.session, owner, pid: 0, start: 0, end: LOCK_TO_EOF };
      if (holdsAny(this.#locksOf(h.file.ino).filter((l) => l.kind === "posix"), req)) await this.#changeLocks(h.file.ino, (locks) => applyLock(locks, req));
    }
  }

  #locksOf(ino: number): FileLock[] {
    return parseLocks(this.meta.inode(ino)?.value.locks);
  }

  /** A record's locks but those of runs found not running. */
  #liveLocks(rec: InodeRecord): FileLock[] {
    return parseLocks(rec.locks).filter((l) => !this.#deadLockHolders.has(`${l.node}/${l.session}`));
  }

  /** Changes an inode's lock table under its home lease; locks of runs that ended are dropped with it. */
  async #changeLocks(ino: number, fn: (locks: FileLock[]) => FileLock[]): Promise<void> {
    const rec = this.meta.inode(ino)?.value;
    if (rec === undefined) throw new FsError("ENOENT", `inode ${ino}`);
    await this.#changeInode(ino, rec, (r) => {
      const locks = fn(this.#liveLocks(r));
      if (locks.length > 0) r.locks = locks;
      else delete r.locks;
    });
  }

  /**
   * The first lock held by a live run that conflicts with `req`, as the newest record has it (with
   * `takeLease`, after taking the inode's home lease, which the change that follows needs anyway).
   */
  async #liveConflict(ino: number, req: LockRequest, takeLease = false): Promise<FileLock | undefined> {
    for (;;) {
      const rec = this.meta.inode(ino)?.value;
      if (rec === undefined) throw new FsError("ENOENT", `inode ${ino}`);
      if (takeLease) await this.leases.withLeases([homeOf(rec)], async () => {});
      const c = conflictingLock(this.#liveLocks(this.#inode(ino).value), req);
      if (c === undefined) return undefined;
      if (await this.leases.runs(c.node, c.session)) return c;
      this.#deadLockHolders.add(`${c.node}/${c.session}`);
    }
  }

  /** Resolves when the inode changes (here or as another node tells), or after `LOCK_RETRY_MS`. */
  #lockChanged(ino: number, retryMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let waiters = this.#lockWaiters.get(ino);
      if (waiters === undefined) this.#lockWaiters.set(ino, (waiters = new Set()));
      const set = waiters;
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#lockWaiters.get(ino) === set) this.#lockWaiters.delete(ino);
        resolve();
      };
      const timer = setTimeout(done, retryMs);
      set.add(done);
    });
  }

  /** An inode changed, here or on another node (its change notice): blocked locks on it look again. */
  wakeLockWaiters(ino: number): void {
    for (const wake of [...(this.#lockWaiters.get(ino) ?? [])]) wake();
  }

  /**
   * mknod(2): a FIFO, a socket (what bind(2) of an AF_UNIX socket makes), a device node (the kernel
   * lets only root ask) or an empty regular file. A special file is a name and attributes here: the
   * node that opens it serves it with its own kernel (see the README).
   */
  async mknod(path: string, mode: number, rdev: number, cred: Cred = ROOT_CRED, owner: Owner = cred): Promise<void> {
    const type = typeOfMode(mode === (mode & 0o7777) ? mode | S_IFREG : mode);
    if (type === undefined || type === "dir" || type === "symlink") throw new FsError("EINVAL", `mknod ${path}: mode ${mode.toString(8)}`);
    const rec = newInode(type, mode, owner.uid, owner.gid);
    if (type === "chr" || type === "blk") rec.rdev = rdev;
    await this.#makeNode(path, rec, cred);
  }

  async readlink(path: string, cred: Cred = ROOT_CRED): Promise<string> {
    const r = await this.#resolve(path, cred, false);
    if (r.inode.value.type !== "symlink") throw new FsError("EINVAL", `${path} is not a symlink`);
    return symlinkTarget(r.inode.value);
  }

  /** Creates a regular file exclusively (O_CREAT|O_EXCL: of racing nodes exactly one wins) and opens it. */
  async create(path: string, mode: number, cred: Cred = ROOT_CRED, flags = O_RDWR, owner: Owner = cred): Promise<number> {
    const rec = newInode("file", mode, owner.uid, owner.gid);
    const ino = await this.#makeNode(path, rec, cred, (made) => {
      let resolve: (key: string | undefined) => void = () => {};
      const done = new Promise<string | undefined>((r) => (resolve = r));
      this.#newFiles.set(made, { done, resolve });
    });
    return this.#openIno(ino, flags, path);
  }

  async open(path: string, flags: number, cred: Cred = ROOT_CRED, mode = 0o644): Promise<number> {
    let r: Resolved;
    try {
      r = await this.#resolveCurrent(path, cred);
    } catch (err) {
      if ((flags & O_CREAT) !== 0 && err instanceof FsError && err.code === "ENOENT") {
        try {
          return await this.create(path, mode, cred, flags);
        } catch (e) {
          // Lost a race with another creator: without O_EXCL, open the winner's file.
          if ((flags & O_EXCL) !== 0 || !(e instanceof FsError) || e.code !== "EEXIST") throw e;
          r = await this.#resolve(path, cred);
        }
      } else throw err;
    }
    if ((flags & O_CREAT) !== 0 && (flags & O_EXCL) !== 0) throw new FsError("EEXIST", path);
    const acc = flags & O_ACCMODE;
    const rec = r.inode.value;
    if (rec.type === "dir" && acc !== 0) throw new FsError("EISDIR", path);
    // A FIFO, socket or device is opened through a node's kernel, never as a CloudFS file.
    if (rec.type !== "file" && rec.type !== "dir" && rec.type !== "symlink") throw new FsError("ENXIO", path);
    const want = (acc === 0 ? R_OK : 0) | (acc === O_WRONLY ? W_OK : 0) | (acc === O_RDWR ? R_OK | W_OK : 0);
    if (!mayAccess(rec, cred, want)) throw new FsError("EACCES", path);
    // Close-to-open: the inode as its lease holder last closed it (it stores that first), or as
    // JetStream has it now when nobody else holds it. While JetStream elects a new leader after a
    // server loss this may time out: the watched replica then answers, so reads stay available.
    const home = homeOf(rec);
    if (!this.#open.get(r.ino)?.dirty && !this.leases.heldBySelf(home) && !(await this.#catchUp(home))) {
      await this.meta.fetchInode(r.ino).catch(() => undefined);
    }
    const fh = this.#openIno(r.ino, flags, path);
    if ((flags & O_TRUNC) !== 0 && acc !== 0 && rec.type === "file") {
      const f = this.#handle(fh).file;
      await f.truncate(0);
    }
    return fh;
  }

  #openIno(ino: number, flags: number, path: string): number {
    const rec = this.#inode(ino).value;
    let file = this.#open.get(ino);
    if (file === undefined) {
      file = new OpenFile(ino, rec, this.#commitFor(ino), this.blocks, this.writeBack);
      this.#open.set(ino, file);
    } else if (!file.dirty) file.refresh(rec);
    file.refs++;
    const fh = this.#nextFh++;
    this.#handles.set(fh, { file, flags, path });
    let at = this.#handlesAt.get(path);
    if (at === undefined) this.#handlesAt.set(path, (at = new Set()));
    at.add(fh);
    return fh;
  }

  /** How an open file commits its blocks and size: under its home lease, to the latest record. */
  #commitFor(ino: number): InodeCommit {
    return (apply) => {
      const home = homeOf(this.#inode(ino).value);
      return this.leases.withLeases([home], async () => {
        const rec = cloneInode(this.#inode(ino).value);
        const { blocks, free } = apply(rec);
        // This node's cache holds the new blocks: other nodes ask it before JetStream.
        if (blocks.length > 0) rec.cachedOn = this.nodeId;
        const stored = this.meta.putInode(ino, rec, homeOf(rec), { blocks, free });
        this.#newFileDone(ino, inodeKey(ino));
        await stored;
        return rec;
      });
    };
  }

  #handle(fh: number): Handle {
    const h = this.#handles.get(fh);
    if (h === undefined) throw new FsError("EBADF", `no open file ${fh}`);
    return h;
  }

  async read(fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    const h = this.#handle(fh);
    if (h.read !== true) {
      h.read = true;
      this.#atimes?.read(h.file.ino);
    }
    return h.file.read(buf, len, offset);
  }

  async write(fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    const h = this.#handle(fh);
    if ((h.flags & O_ACCMODE) === 0) throw new FsError("EBADF", "file not open for writing");
    return h.file.write(buf, len, offset);
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    if (size < 0) throw new FsError("EINVAL", "negative size");
    await this.#handle(fh).file.truncate(size);
  }

  async truncate(path: string, size: number, cred: Cred = ROOT_CRED): Promise<void> {
    if (size < 0) throw new FsError("EINVAL", "negative size");
    const fh = await this.open(path, O_WRONLY, cred);
    try {
      await this.ftruncate(fh, size);
    } finally {
      await this.release(fh);
    }
  }

  /**
   * close(2): commits the file's bytes and size on this node (journaled; other nodes' next open asks
   * for them). In strict mode, and with fsync, they are stored in JetStream before this returns.
   */
  async flush(fh: number): Promise<void> {
    await this.#handle(fh).file.flush();
  }

  /** fsync(2)/fdatasync(2): the file's data and metadata, and all before them, stored at R3. */
  async fsync(fh: number): Promise<void> {
    await this.flush(fh);
    await this.writeBack.sync();
  }

  async release(fh: number): Promise<void> {
    const h = this.#handle(fh);
    this.#handles.delete(fh);
    const at = this.#handlesAt.get(h.path);
    at?.delete(fh);
    if (at?.size === 0) this.#handlesAt.delete(h.path);
    const f = h.file;
    try {
      await f.flush();
      await this.#unlockHandle(h);
    } finally {
      f.refs--;
      if (f.refs === 0) {
        this.#open.delete(f.ino);
        this.#newFileDone(f.ino, undefined);
        // The last close here of a file with no name left: deleted once no other node has it open.
        if (this.meta.inode(f.ino)?.value.nlink === 0) this.#reaper?.add(f.ino);
      }
    }
  }

  /** Deletes an inode (its home lease held); its blocks are purged once that is stored. */
  async #destroyInode(ino: number, rec: InodeRecord): Promise<void> {
    const writes = [this.meta.deleteInode(ino, homeOf(rec), Object.values(rec.blocks))];
    if (rec.type === "dir" && this.leases.heldBySelf(ino)) {
      if (this.meta.dirTimes(ino) !== undefined) writes.push(this.meta.writeKey(dirTimesKey(ino), null, ino));
      writes.push(this.meta.writeKey(leaseKey(ino), null, ino));
    }
    await Promise.all(writes);
  }

  /**
   * Drops one link (the inode's home lease held). A directory goes with its last link; a file once no
   * node has it open (the reaper asks them; until then this node answers for it: `orphanOf`).
   */
  async #dropLink(ino: number): Promise<void> {
    const before = this.#inode(ino).value;
    if (before.type !== "dir" && before.nlink <= 1 && !this.#open.has(ino) && this.#reaper !== undefined) {
      // The last name of a file not open here: the record is left as it is for the reaper, which
      // deletes it in one write once no node has it open (an rm -rf stores one change a file, not
      // two), or marks it then (`keep`).
      this.#reaper.add(ino);
      return;
    }
    const rec = await this.#mutateInode(ino, (r) => {
      r.nlink = Math.max(0, r.nlink - (r.type === "dir" ? r.nlink : 1));
      r.ctimeMs = Date.now();
      if (r.nlink === 0 && r.type !== "dir") r.orphanOf = this.nodeId;
    });
    if (rec.nlink !== 0) return;
    if (rec.type === "dir") await this.#destroyInode(ino, rec);
    else if (!this.#open.has(ino)) this.#reaper?.add(ino);
  }

  async #removeEntry(path: string, cred: Cred, wantDir: boolean): Promise<void> {
    const hidden = this.#hidden.get(path);
    if (hidden !== undefined && !wantDir) {
      this.#hidden.delete(path);
      const rec = this.meta.inode(hidden)?.value;
      if (rec !== undefined && rec.nlink === 0 && !this.#open.has(hidden)) this.#reaper?.add(hidden);
      return;
    }
    for (;;) {
      const { dir, name } = await this.#parentFor(path, cred);
      this.#checkWritableDir(dir, cred);
      const seen = await this.#lookup(dir.ino, name);
      if (seen === undefined) throw new FsError("ENOENT", path);
      const target = this.#inode(seen.value.ino).value;
      try {
        // rmdir: the directory's own lease too, so its emptiness is known (another node may hold it).
        const leases = [dir.ino, homeOf(target), ...(wantDir && target.type === "dir" ? [seen.value.ino] : [])];
        await this.leases.withLeases(leases, async () => {
          const e = this.meta.entry(dir.ino, name);
          if (e === undefined) throw new FsError("ENOENT", path);
          if (e.value.ino !== seen.value.ino) throw new Moved();
          const inode = this.#inode(e.value.ino).value;
          this.#checkSticky(dir.inode.value, inode, cred);
          if (wantDir) {
            if (inode.type !== "dir") throw new FsError("ENOTDIR", path);
            if (this.meta.entries(e.value.ino).size > 0) throw new FsError("ENOTEMPTY", path);
          } else if (inode.type === "dir") throw new FsError("EISDIR", path);
          await Promise.all([this.meta.deleteEntry(dir.ino, name), this.#dropLink(e.value.ino), this.#touchDir(dir.ino)]);
        });
        return;
      } catch (err) {
        if (!(err instanceof Moved)) throw err;
      }
    }
  }

  #checkSticky(dir: InodeRecord, target: InodeRecord, cred: Cred): void {
    if ((dir.mode & 0o1000) !== 0 && cred.uid !== 0 && cred.uid !== dir.uid && cred.uid !== target.uid) {
      throw new FsError("EPERM", "sticky directory");
    }
  }

  async unlink(path: string, cred: Cred = ROOT_CRED): Promise<void> {
    await this.#removeEntry(path, cred, false);
  }

  async rmdir(path: string, cred: Cred = ROOT_CRED): Promise<void> {
    if (splitPath(path).length === 0) throw new FsError("EBUSY", "/");
    await this.#removeEntry(path, cred, true);
  }

  async link(existing: string, newPath: string, cred: Cred = ROOT_CRED): Promise<void> {
    const src = await this.#resolve(existing, cred, false);
    if (src.inode.value.type === "dir") throw new FsError("EPERM", "hard link to a directory");
    const { dir, name } = await this.#parentFor(newPath, cred);
    this.#checkWritableDir(dir, cred);
    await this.leases.withLeases([dir.ino, homeOf(src.inode.value)], async () => {
      if (this.meta.entry(dir.ino, name) !== undefined) throw new FsError("EEXIST", newPath);
      await Promise.all([
        this.#mutateInode(src.ino, (r) => {
          if (r.nlink === 0) throw new FsError("ENOENT", existing);
          r.nlink++;
          r.ctimeMs = Date.now();
        }),
        this.meta.putEntry(dir.ino, name, { ino: src.ino, type: src.inode.value.type }),
        this.#touchDir(dir.ino),
      ]);
    });
  }

  /**
   * Renames atomically: the target's entry is replaced in one change (the name never disappears),
   * then the source entry is removed, both under the leases of the two directories, journaled in that
   * order. Works across directories (never EXDEV inside CloudFS).
   */
  async rename(from: string, to: string, cred: Cred = ROOT_CRED): Promise<void> {
    for (;;) {
      try {
        return await this.#renameOnce(from, to, cred);
      } catch (err) {
        if (!(err instanceof Moved)) throw err;
      }
    }
  }

  async #renameOnce(from: string, to: string, cred: Cred): Promise<void> {
    const toParts = splitPath(to);
    const toName = toParts[toParts.length - 1];
    const src = await this.#parentFor(from, cred);
    this.#checkWritableDir(src.dir, cred);
    const se0 = await this.#lookup(src.dir.ino, src.name);
    if (se0 === undefined) throw new FsError("ENOENT", from);
    const srcInode = this.#inode(se0.value.ino).value;
    this.#checkSticky(src.dir.inode.value, srcInode, cred);
    const sourceStill = (): void => {
      if (this.meta.entry(src.dir.ino, src.name)?.value.ino !== se0.value.ino) throw new Moved();
    };

    if (toName !== undefined && FUSE_HIDDEN.test(toName) && srcInode.type !== "dir") {
      // libfuse hides an open file it must unlink: we unlink it for real and remember the hidden path
      // locally, so the name never shows in any listing nor on any other node.
      await this.leases.withLeases([src.dir.ino, homeOf(srcInode)], async () => {
        sourceStill();
        this.#hidden.set("/" + toParts.join("/"), se0.value.ino);
        await Promise.all([this.meta.deleteEntry(src.dir.ino, src.name), this.#dropLink(se0.value.ino), this.#touchDir(src.dir.ino)]);
      });
      return;
    }

    const dst = await this.#parentFor(to, cred);
    this.#checkWritableDir(dst.dir, cred);
    const fromNorm = "/" + splitPath(from).join("/");
    const toNorm = "/" + toParts.join("/");
    if (fromNorm === toNorm) return;
    if (srcInode.type === "dir" && toNorm.startsWith(fromNorm + "/")) {
      throw new FsError("EINVAL", "cannot move a directory into itself");
    }
    const de0 = await this.#lookup(dst.dir.ino, dst.name);
    const dstInode0 = de0 === undefined ? undefined : this.#inode(de0.value.ino).value;
    const leases = [src.dir.ino, dst.dir.ino, homeOf(srcInode)];
    if (dstInode0 !== undefined) leases.push(homeOf(dstInode0));
    // A directory replaced must be empty: its own lease makes that known.
    if (dstInode0?.type === "dir") leases.push(de0!.value.ino);
    await this.leases.withLeases(leases, async () => {
      sourceStill();
      const de = this.meta.entry(dst.dir.ino, dst.name);
      if (de?.value.ino !== de0?.value.ino) throw new Moved();
      const newEntry: DirEntryRecord = { ino: se0.value.ino, type: srcInode.type };
      const writes: Promise<unknown>[] = [];
      if (de !== undefined) {
        if (de.value.ino === se0.value.ino) return; // two links to one inode: POSIX says do nothing
        const dstInode = this.#inode(de.value.ino).value;
        this.#checkSticky(dst.dir.inode.value, dstInode, cred);
        if (srcInode.type === "dir" && dstInode.type !== "dir") throw new FsError("ENOTDIR", to);
        if (srcInode.type !== "dir" && dstInode.type === "dir") throw new FsError("EISDIR", to);
        if (dstInode.type === "dir" && this.meta.entries(de.value.ino).size > 0) throw new FsError("ENOTEMPTY", to);
        writes.push(this.meta.putEntry(dst.dir.ino, dst.name, newEntry), this.meta.deleteEntry(src.dir.ino, src.name));
        writes.push(this.#dropLink(de.value.ino));
      } else {
        writes.push(this.meta.putEntry(dst.dir.ino, dst.name, newEntry), this.meta.deleteEntry(src.dir.ino, src.name));
      }
      writes.push(this.#mutateInode(se0.value.ino, (r) => void (r.ctimeMs = Date.now())), this.#touchDir(src.dir.ino));
      if (dst.dir.ino !== src.dir.ino) writes.push(this.#touchDir(dst.dir.ino));
      await Promise.all(writes);
    });
  }

  async chmod(path: string, mode: number, cred: Cred = ROOT_CRED): Promise<void> {
    const r = await this.#resolve(path, cred);
    if (!isOwnerOrRoot(r.inode.value, cred)) throw new FsError("EPERM", path);
    await this.#changeInode(r.ino, r.inode.value, (rec) => {
      rec.mode = mode & 0o7777;
      rec.ctimeMs = Date.now();
    });
  }

  /** `uid`/`gid` of -1 (or 0xffffffff, as FUSE passes it) leave that id unchanged. */
  async chown(path: string, uid: number, gid: number, cred: Cred = ROOT_CRED): Promise<void> {
    const r = await this.#resolve(path, cred, false);
    const keepUid = uid === -1 || uid === 0xffffffff || uid === r.inode.value.uid;
    const keepGid = gid === -1 || gid === 0xffffffff;
    if (cred.uid !== 0) {
      if (!keepUid || cred.uid !== r.inode.value.uid) throw new FsError("EPERM", path);
      if (!keepGid && gid !== cred.gid && !(cred.groups ?? []).includes(gid)) throw new FsError("EPERM", path);
    }
    await this.#changeInode(r.ino, r.inode.value, (rec) => {
      if (!keepUid) rec.uid = uid;
      if (!keepGid) rec.gid = gid;
      // As Linux does: changing the owner of a non-directory drops setuid/setgid.
      if (rec.type === "file" && (!keepUid || !keepGid)) rec.mode &= ~0o6000;
      rec.ctimeMs = Date.now();
    });
  }

  /** Sets the times of `path` itself (a symbolic link's own, as utimensat with AT_SYMLINK_NOFOLLOW); undefined keeps one. */
  async utimens(path: string, atimeSet: NsTime | undefined, mtimeSet: NsTime | undefined, cred: Cred = ROOT_CRED): Promise<void> {
    const r = await this.#resolve(path, cred, false);
    if (!isOwnerOrRoot(r.inode.value, cred) && !mayAccess(r.inode.value, cred, W_OK)) throw new FsError("EPERM", path);
    const atime = atimeSet === undefined ? undefined : splitNsTime(atimeSet);
    const mtime = mtimeSet === undefined ? undefined : splitNsTime(mtimeSet);
    await this.#changeInode(r.ino, r.inode.value, (rec) => {
      if (atime !== undefined) {
        rec.atimeMs = atime.ms;
        if (atime.ns !== undefined) rec.atimeNs = atime.ns;
        else delete rec.atimeNs;
      }
      if (mtime !== undefined) {
        rec.mtimeMs = mtime.ms;
        if (mtime.ns !== undefined) rec.mtimeNs = mtime.ns;
        else delete rec.mtimeNs;
      }
      rec.ctimeMs = Date.now();
    });
    // A directory's mtime lives in its own times record once it has one: set there too.
    if (r.inode.value.type === "dir" && mtime !== undefined) {
      await this.leases.withLeases([r.ino], async () => {
        if (this.meta.dirTimes(r.ino) !== undefined) {
          await this.meta.putDirTimes(r.ino, { mtimeMs: mtime.ms, ctimeMs: Date.now(), ...(mtime.ns !== undefined ? { mtimeNs: mtime.ns } : {}) });
        }
      });
    }
  }

  statfs(): FsStatfs {
    let used = 0;
    for (const [, v] of this.meta.allInodes()) used += v.value.size;
    const bsize = 4096;
    // JetStream's file store limit is the real cap; 1 TiB is the figure reported to df.
    const total = 1024 ** 4 / bsize;
    const free = Math.max(0, total - Math.ceil(used / bsize));
    const files = 0xffff_fff0;
    return {
      bsize,
      frsize: bsize,
      blocks: total,
      bfree: free,
      bavail: free,
      files,
      ffree: files - this.meta.inodeCount(),
      favail: files - this.meta.inodeCount(),
      fsid: 0x0c10d,
      flag: 0,
      namemax: NAME_MAX_BYTES,
    };
  }

  // ---- conveniences for the web desktop and the shell ----------------------------------------

  async readFile(path: string, cred: Cred = ROOT_CRED): Promise<Buffer> {
    const fh = await this.open(path, 0, cred);
    try {
      const size = (await this.fgetattr(fh)).size;
      const buf = Buffer.alloc(size);
      const n = await this.read(fh, buf, size, 0);
      return buf.subarray(0, n);
    } finally {
      await this.release(fh);
    }
  }

  async writeFile(path: string, data: Uint8Array, cred: Cred = ROOT_CRED, mode = 0o644): Promise<void> {
    const fh = await this.open(path, O_WRONLY | O_CREAT | O_TRUNC, cred, mode);
    try {
      const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
      await this.write(fh, buf, buf.length, 0);
    } finally {
      await this.release(fh);
    }
  }

  /** This run of the node's CloudFS: locks name it (a restarted daemon's earlier locks are void). */
  get session(): string {
    return this.leases.session;
  }

  /** Peers whose cached blocks this node reads over a direct link now (block-link.ts). */
  blockLinkPeers(): Promise<string[]> {
    return this.links.linkedPeers();
  }

  /**
   * Flushes every open file, stores what the node holds (bounded: what is left stays in the journal
   * for the next start), closes the watch and the caches. Open handles are dropped.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fh of [...this.#handles.keys()]) await this.release(fh).catch(() => {});
    // Hand the leases back, so other nodes need not wait for them to expire.
    await Promise.all(this.leases.ownedDirs().map((dir) => this.meta.writeKey(leaseKey(dir), null, dir))).catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.writeBack.sync(), new Promise((r) => (timer = setTimeout(r, CLOSE_SYNC_MS)))]);
    clearTimeout(timer);
    this.#unserve();
    this.#reaper?.close();
    this.#atimes?.close();
    await this.links.close();
    this.leases.close();
    await this.writeBack.close();
    this.#unwatch();
    await this.meta.close();
    await this.blocks.close();
    await this.disk.close();
  }
}
