import type { NatsConnection } from "@nats-io/transport-node";
import { BLOCK_SIZE } from "./block-math.js";
import { BlockStore } from "./block-store.js";
import { ensureCloudFsBuckets, type CloudFsBuckets } from "./buckets.js";
import { DiskBlockCache } from "./disk-block-cache.js";
import { FsError } from "./errors.js";
import { MetaStore, isWrongRevision, type Versioned } from "./meta-store.js";
import { decodeName, encodeName, NAME_MAX_BYTES, splitPath } from "./name-codec.js";
import { OpenFile } from "./open-file.js";
import { isOwnerOrRoot, mayAccess, R_OK, ROOT_CRED, W_OK, X_OK, type Cred } from "./permissions.js";
import { newInode, ROOT_INO, typeBits, type DirEntryRecord, type InodeRecord } from "./records.js";

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
  readonly blocks: number;
  readonly blksize: number;
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
}

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
}

/**
 * CloudFS without FUSE: every POSIX operation on absolute CloudFS paths, with permission checks for a
 * caller's credentials. The FUSE mount, the web desktop and the shell all use this.
 */
export class CloudFsCore {
  readonly #handles = new Map<number, Handle>();
  readonly #open = new Map<number, OpenFile>();
  /** Paths libfuse gave to unlinked-but-open files → their inode (never listed, never in JetStream). */
  readonly #hidden = new Map<string, number>();
  #nextFh = 1;
  #closed = false;
  readonly #unwatch: () => void;

  private constructor(
    readonly meta: MetaStore,
    readonly blocks: BlockStore,
    private readonly disk: DiskBlockCache,
    readonly nodeId: string,
  ) {
    this.#unwatch = meta.onChange((change) => {
      if (change.kind !== "inode") return;
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
    const meta = new MetaStore(buckets.meta, buckets.locks, opTimeoutMs);
    await meta.start();
    const disk = await DiskBlockCache.open(options.cacheDir, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    const blocks = new BlockStore(buckets.blocks, disk, opTimeoutMs);
    const core = new CloudFsCore(meta, blocks, disk, options.nodeId ?? `node-${Math.random().toString(36).slice(2)}`);
    await core.#collectOwnOrphans();
    return core;
  }

  /** Deletes inodes this node left unlinked-but-open when it last stopped without closing them. */
  async #collectOwnOrphans(): Promise<void> {
    for (const [ino, v] of [...this.meta.allInodes()]) {
      if (v.value.nlink === 0 && v.value.orphanOf === this.nodeId) await this.#destroyInode(ino, v.value);
    }
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
      const e = this.meta.entry(cur.ino, name) ?? (await this.meta.fetchEntry(cur.ino, name));
      if (e === undefined) throw new FsError("ENOENT", path);
      const inode = this.meta.inode(e.value.ino) ?? (await this.meta.fetchInode(e.value.ino));
      if (inode === undefined) throw new FsError("ENOENT", path);
      const last = i === parts.length - 1;
      if (inode.value.type === "symlink" && (!last || followLast)) {
        if (depth >= MAX_SYMLINKS) throw new FsError("ELOOP", path);
        const target = inode.value.target ?? "";
        const base = target.startsWith("/") ? target : "/" + [...parts.slice(0, i), target].join("/");
        const rest = parts.slice(i + 1).join("/");
        return this.#resolve(rest === "" ? base : `${base}/${rest}`, cred, followLast, depth + 1);
      }
      cur = { ino: e.value.ino, inode, parent: cur.ino, name, entryRev: e.rev };
    }
    return cur;
  }

  /** Resolves the parent directory of `path` and checks the caller may change it (w+x). */
  async #parentFor(path: string, cred: Cred): Promise<{ dir: Resolved; name: string; rawName: string }> {
    const parts = splitPath(path);
    const rawName = parts.pop();
    if (rawName === undefined) throw new FsError("EEXIST", "/ always exists");
    if (Buffer.byteLength(rawName) > NAME_MAX_BYTES) throw new FsError("ENAMETOOLONG", rawName);
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
    const allocated = Math.min(size, Object.keys(rec.blocks).length * BLOCK_SIZE);
    return {
      ino,
      mode: typeBits(rec.type) | rec.mode,
      uid: rec.uid,
      gid: rec.gid,
      size,
      nlink,
      atime: new Date(rec.atimeMs),
      mtime: new Date(rec.mtimeMs),
      ctime: new Date(rec.ctimeMs),
      blocks: Math.ceil(allocated / 512),
      blksize: 128 * 1024,
    };
  }

  // ---- metadata operations --------------------------------------------------------------------

  async getattr(path: string, cred: Cred = ROOT_CRED): Promise<FsStat> {
    const r = await this.#resolve(path, cred, false);
    return this.#stat(r.ino, r.inode.value);
  }

  /** Like `getattr` but follows a final symlink (stat vs lstat). */
  async stat(path: string, cred: Cred = ROOT_CRED): Promise<FsStat> {
    const r = await this.#resolve(path, cred, true);
    return this.#stat(r.ino, r.inode.value);
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
    await this.meta.ensureFresh();
    const r = await this.#resolve(path, cred);
    if (r.inode.value.type !== "dir") throw new FsError("ENOTDIR", path);
    if (!mayAccess(r.inode.value, cred, R_OK)) throw new FsError("EACCES", path);
    const out: { name: string; stat: FsStat }[] = [];
    for (const [enc, e] of this.meta.entries(r.ino)) {
      const inode = this.meta.inode(e.value.ino);
      if (inode === undefined) continue;
      out.push({ name: decodeName(enc).toString("utf8"), stat: this.#stat(e.value.ino, inode.value) });
    }
    return out;
  }

  async #makeNode(path: string, rec: InodeRecord, cred: Cred): Promise<number> {
    const { dir, name } = await this.#parentFor(path, cred);
    this.#checkWritableDir(dir, cred);
    if (this.meta.entry(dir.ino, name) !== undefined) throw new FsError("EEXIST", path);
    // setgid directories hand their group down, as on ext4.
    if ((dir.inode.value.mode & 0o2000) !== 0) {
      rec.gid = dir.inode.value.gid;
      if (rec.type === "dir") rec.mode |= 0o2000;
    }
    const ino = await this.meta.allocateIno();
    // The kernel holds the directory's lock from LOOKUP to the end of CREATE, so creates in one
    // directory are serial: the inode and the entry are written in parallel to halve that time. Another
    // node that finds the entry a moment before the inode re-reads the inode from the stream.
    const [inode, entry] = await Promise.allSettled([
      this.meta.createInode(ino, rec),
      this.meta.createEntry(dir.ino, name, { ino, type: rec.type }),
    ]);
    if (inode.status === "rejected" || entry.status === "rejected") {
      if (inode.status === "fulfilled") await this.meta.deleteInode(ino).catch(() => {});
      if (entry.status === "fulfilled") {
        const e = this.meta.entry(dir.ino, name);
        if (e !== undefined) await this.meta.deleteEntry(dir.ino, name, e.rev).catch(() => {});
      }
      throw entry.status === "rejected" ? entry.reason : (inode as PromiseRejectedResult).reason;
    }
    return ino;
  }

  /** `owner` (default: `cred`'s ids) owns the new node: the FUSE adapter passes the calling process. */
  async mkdir(path: string, mode: number, cred: Cred = ROOT_CRED, owner: Owner = cred): Promise<void> {
    await this.#makeNode(path, newInode("dir", mode, owner.uid, owner.gid), cred);
  }

  async symlink(target: string, path: string, cred: Cred = ROOT_CRED, owner: Owner = cred): Promise<void> {
    const rec = newInode("symlink", 0o777, owner.uid, owner.gid);
    rec.target = target;
    rec.size = Buffer.byteLength(target);
    await this.#makeNode(path, rec, cred);
  }

  async readlink(path: string, cred: Cred = ROOT_CRED): Promise<string> {
    const r = await this.#resolve(path, cred, false);
    if (r.inode.value.type !== "symlink") throw new FsError("EINVAL", `${path} is not a symlink`);
    return r.inode.value.target ?? "";
  }

  /** Creates a regular file exclusively (O_CREAT|O_EXCL: of racing nodes exactly one wins) and opens it. */
  async create(path: string, mode: number, cred: Cred = ROOT_CRED, flags = O_RDWR, owner: Owner = cred): Promise<number> {
    const rec = newInode("file", mode, owner.uid, owner.gid);
    const ino = await this.#makeNode(path, rec, cred);
    return this.#openIno(ino, flags);
  }

  async open(path: string, flags: number, cred: Cred = ROOT_CRED, mode = 0o644): Promise<number> {
    let r: Resolved;
    try {
      r = await this.#resolve(path, cred);
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
    const want = (acc === 0 ? R_OK : 0) | (acc === O_WRONLY ? W_OK : 0) | (acc === O_RDWR ? R_OK | W_OK : 0);
    if (!mayAccess(rec, cred, want)) throw new FsError("EACCES", path);
    // Close-to-open: the inode as JetStream has it now, not as the watch last told us.
    // While JetStream elects a new leader after a server loss this may time out: the watched replica
    // (milliseconds behind at most) then answers, so reads stay available during a fail-over.
    if (!this.#open.get(r.ino)?.dirty) await this.meta.fetchInode(r.ino).catch(() => undefined);
    const fh = this.#openIno(r.ino, flags);
    if ((flags & O_TRUNC) !== 0 && acc !== 0 && rec.type === "file") {
      const f = this.#handle(fh).file;
      await f.truncate(0);
    }
    return fh;
  }

  #openIno(ino: number, flags: number): number {
    const rec = this.#inode(ino).value;
    let file = this.#open.get(ino);
    if (file === undefined) {
      file = new OpenFile(ino, rec, this.meta, this.blocks);
      this.#open.set(ino, file);
    } else if (!file.dirty) file.refresh(rec);
    file.refs++;
    const fh = this.#nextFh++;
    this.#handles.set(fh, { file, flags });
    return fh;
  }

  #handle(fh: number): Handle {
    const h = this.#handles.get(fh);
    if (h === undefined) throw new FsError("EBADF", `no open file ${fh}`);
    return h;
  }

  async read(fh: number, buf: Buffer, len: number, offset: number): Promise<number> {
    return this.#handle(fh).file.read(buf, len, offset);
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

  /** Makes the file's bytes durable in JetStream (and visible to other nodes' next open). */
  async flush(fh: number): Promise<void> {
    await this.#handle(fh).file.flush();
  }

  async fsync(fh: number): Promise<void> {
    await this.flush(fh);
  }

  async release(fh: number): Promise<void> {
    const h = this.#handle(fh);
    this.#handles.delete(fh);
    const f = h.file;
    try {
      await f.flush();
    } finally {
      f.refs--;
      if (f.refs === 0) {
        this.#open.delete(f.ino);
        const rec = this.meta.inode(f.ino)?.value;
        if (rec !== undefined && rec.nlink === 0) await this.#destroyInode(f.ino, rec);
      }
    }
  }

  async #destroyInode(ino: number, rec: InodeRecord): Promise<void> {
    await this.meta.deleteInode(ino);
    this.blocks.release(Object.values(rec.blocks));
  }

  /** Drops one link; the inode goes when the last link and the last local open are gone. */
  async #dropLink(ino: number): Promise<void> {
    const open = this.#open.has(ino);
    const rec = await this.meta.mutateInode(ino, (r) => {
      r.nlink = Math.max(0, r.nlink - (r.type === "dir" ? r.nlink : 1));
      r.ctimeMs = Date.now();
      if (r.nlink === 0 && open) r.orphanOf = this.nodeId;
    });
    if (rec.nlink === 0 && !this.#open.has(ino)) await this.#destroyInode(ino, rec);
  }

  async #removeEntry(path: string, cred: Cred, wantDir: boolean): Promise<void> {
    const hidden = this.#hidden.get(path);
    if (hidden !== undefined && !wantDir) {
      this.#hidden.delete(path);
      const rec = this.meta.inode(hidden)?.value;
      if (rec !== undefined && rec.nlink === 0 && !this.#open.has(hidden)) await this.#destroyInode(hidden, rec);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const { dir, name } = await this.#parentFor(path, cred);
      this.#checkWritableDir(dir, cred);
      const e = this.meta.entry(dir.ino, name) ?? (await this.meta.fetchEntry(dir.ino, name));
      if (e === undefined) throw new FsError("ENOENT", path);
      const inode = this.#inode(e.value.ino).value;
      this.#checkSticky(dir.inode.value, inode, cred);
      if (wantDir) {
        if (inode.type !== "dir") throw new FsError("ENOTDIR", path);
        if (this.meta.entries(e.value.ino).size > 0) throw new FsError("ENOTEMPTY", path);
      } else if (inode.type === "dir") throw new FsError("EISDIR", path);
      try {
        await this.meta.deleteEntry(dir.ino, name, e.rev);
      } catch (err) {
        if (isWrongRevision(err) && attempt < 5) continue;
        throw err;
      }
      await this.#dropLink(e.value.ino);
      return;
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
    if (this.meta.entry(dir.ino, name) !== undefined) throw new FsError("EEXIST", newPath);
    await this.meta.mutateInode(src.ino, (r) => {
      if (r.nlink === 0) throw new FsError("ENOENT", existing);
      r.nlink++;
      r.ctimeMs = Date.now();
    });
    try {
      await this.meta.createEntry(dir.ino, name, { ino: src.ino, type: src.inode.value.type });
    } catch (err) {
      await this.meta.mutateInode(src.ino, (r) => void (r.nlink = Math.max(1, r.nlink - 1))).catch(() => {});
      throw err;
    }
  }

  /**
   * Renames atomically as far as readers of the target name go: an existing target is replaced by one
   * compare-and-set on its entry (never missing in between), then the source entry is removed. Works
   * across directories (never EXDEV inside CloudFS).
   */
  async rename(from: string, to: string, cred: Cred = ROOT_CRED): Promise<void> {
    const toParts = splitPath(to);
    const toName = toParts[toParts.length - 1];
    const src = await this.#parentFor(from, cred);
    this.#checkWritableDir(src.dir, cred);
    const se = this.meta.entry(src.dir.ino, src.name) ?? (await this.meta.fetchEntry(src.dir.ino, src.name));
    if (se === undefined) throw new FsError("ENOENT", from);
    const srcInode = this.#inode(se.value.ino).value;
    this.#checkSticky(src.dir.inode.value, srcInode, cred);

    if (toName !== undefined && FUSE_HIDDEN.test(toName) && srcInode.type !== "dir") {
      // libfuse hides an open file it must unlink: we unlink it for real and remember the hidden path
      // locally, so the name never shows in any listing nor on any other node.
      await this.meta.deleteEntry(src.dir.ino, src.name, se.rev);
      this.#hidden.set("/" + toParts.join("/"), se.value.ino);
      await this.#dropLink(se.value.ino);
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
    const de = this.meta.entry(dst.dir.ino, dst.name) ?? (await this.meta.fetchEntry(dst.dir.ino, dst.name));
    const newEntry: DirEntryRecord = { ino: se.value.ino, type: srcInode.type };
    if (de !== undefined) {
      if (de.value.ino === se.value.ino) return; // two links to one inode: POSIX says do nothing
      const dstInode = this.#inode(de.value.ino).value;
      this.#checkSticky(dst.dir.inode.value, dstInode, cred);
      if (srcInode.type === "dir" && dstInode.type !== "dir") throw new FsError("ENOTDIR", to);
      if (srcInode.type !== "dir" && dstInode.type === "dir") throw new FsError("EISDIR", to);
      if (dstInode.type === "dir" && this.meta.entries(de.value.ino).size > 0) throw new FsError("ENOTEMPTY", to);
      await this.meta.replaceEntry(dst.dir.ino, dst.name, newEntry, de.rev);
      await this.meta.deleteEntry(src.dir.ino, src.name, se.rev);
      await this.#dropLink(de.value.ino);
    } else {
      await this.meta.createEntry(dst.dir.ino, dst.name, newEntry);
      try {
        await this.meta.deleteEntry(src.dir.ino, src.name, se.rev);
      } catch (err) {
        // Someone moved or removed the source meanwhile: undo our half so no name is duplicated.
        const mine = this.meta.entry(dst.dir.ino, dst.name);
        if (mine !== undefined) await this.meta.deleteEntry(dst.dir.ino, dst.name, mine.rev).catch(() => {});
        throw err;
      }
    }
    await this.meta.mutateInode(se.value.ino, (r) => void (r.ctimeMs = Date.now())).catch(() => {});
  }

  async chmod(path: string, mode: number, cred: Cred = ROOT_CRED): Promise<void> {
    const r = await this.#resolve(path, cred);
    if (!isOwnerOrRoot(r.inode.value, cred)) throw new FsError("EPERM", path);
    await this.meta.mutateInode(r.ino, (rec) => {
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
    await this.meta.mutateInode(r.ino, (rec) => {
      if (!keepUid) rec.uid = uid;
      if (!keepGid) rec.gid = gid;
      // As Linux does: changing the owner of a non-directory drops setuid/setgid.
      if (rec.type === "file" && (!keepUid || !keepGid)) rec.mode &= ~0o6000;
      rec.ctimeMs = Date.now();
    });
  }

  async utimens(path: string, atimeMs: number, mtimeMs: number, cred: Cred = ROOT_CRED): Promise<void> {
    const r = await this.#resolve(path, cred);
    if (!isOwnerOrRoot(r.inode.value, cred) && !mayAccess(r.inode.value, cred, W_OK)) throw new FsError("EPERM", path);
    await this.meta.mutateInode(r.ino, (rec) => {
      rec.atimeMs = atimeMs;
      rec.mtimeMs = mtimeMs;
      rec.ctimeMs = Date.now();
    });
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

  /** Flushes every open file, closes the watch and the caches. Open handles are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const fh of [...this.#handles.keys()]) await this.release(fh).catch(() => {});
    this.#unwatch();
    await this.meta.close();
    await this.blocks.close();
    await this.disk.close();
  }
}
