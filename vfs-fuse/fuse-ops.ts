import { constants } from "node:fs";
import type { CloudFsCore, FsStat } from "./core.js";
import { FS_ERRNO, FsError, toNegativeErrno } from "./errors.js";
import { fcntlRange, LOCK_TO_EOF } from "./locks.js";
import { kernelToName, nameToKernel } from "./name-codec.js";
import { ROOT_CRED } from "./permissions.js";
import type { NsTime } from "./records.js";

const { O_RDWR, O_CREAT, O_EXCL } = constants;
/** The kernel's FUSE_GETATTR opcode (linux/fuse.h), as CloudFS's build reports the request's. */
const FUSE_GETATTR = 3;

function defaultIoErrorLog(err: unknown): void {
  process.stderr.write(`cloudfs: EIO: ${err instanceof Error ? err.message : String(err)}\n`);
}

type Cb = (err: number, ...rest: unknown[]) => void;

/** The fuse-native operation table, as fuse-native calls it (callbacks, negative errnos). */
export type FuseOps = Record<string, (...args: never[]) => void>;

/**
 * Adapts the core to fuse-native's callback API. The kernel has already checked permissions
 * (`default_permissions`), so the core is called with root credentials. Every op is async and never
 * blocks the event loop; a failure of any kind becomes its errno (unknown ones EIO).
 */
export interface FuseOpsOptions {
  /** The calling process's ids, read synchronously when an op starts (CloudFS's fuse-native build). */
  readonly caller?: () => { uid: number; gid: number; pid?: number; opcode?: number; unique?: number } | undefined;
  /** The nanoseconds within the ms of the utimens being dispatched, [atime's, mtime's] (CloudFS's fuse-native build). */
  readonly utimeNs?: () => readonly [number, number] | undefined;
  /** Whether the kernel asked to interrupt request `unique` (a signal came to its caller): a blocked lock ends with EINTR. */
  readonly interrupted?: (unique: number) => boolean;
  readonly onIoError?: (err: unknown) => void;
  /** Resolves once other nodes that may cache what the ops changed have dropped it (change-notices.ts). */
  readonly settled?: () => Promise<void>;
  /**
   * Answers an op and hands libfuse the attributes of `path` with it (CloudFS's fuse-native build,
   * `native/build.mjs`): libfuse 2 always asks for them right after a chmod, chown, utimens,
   * truncate, create, mkdir, symlink or link, and that getattr is then served on the FUSE thread
   * without another trip to JavaScript.
   */
  readonly answerWithStat?: (path: string, stat: FsStat, answer: () => void) => void;
  /**
   * Paths and names come and go as latin1 strings, a character a byte (CloudFS's fuse-native build):
   * the ops convert them to and from the core's form, so a name may be any bytes (name-codec.ts).
   * `answerWithStat` then gets the core's form too.
   */
  readonly byteNames?: boolean;
}

export function makeFuseOps(core: CloudFsCore, options: FuseOpsOptions = {}): FuseOps {
  const onIoError = options.onIoError ?? defaultIoErrorLog;
  /** New files belong to their creator; without caller ids (stock fuse-native) to root. */
  const owner = (): { uid: number; gid: number; pid?: number; opcode?: number; unique?: number } | undefined => options.caller?.();
  /** For a blocking lock request: whether a signal came to the caller since (undefined: cannot tell). */
  const interruption = (): { interrupted?: () => boolean } => {
    const unique = owner()?.unique;
    const asked = options.interrupted;
    return unique === undefined || unique === 0 || asked === undefined ? {} : { interrupted: () => asked(unique) };
  };
  const fail = (cb: Cb, err: unknown): void => {
    const errno = toNegativeErrno(err);
    // EIO is the one answer that hides its cause from the program: keep the cause for the operator.
    if (errno === -FS_ERRNO.EIO) onIoError(err);
    cb(errno);
  };
  const settled = options.settled ?? (() => Promise.resolve());
  // Every answer waits until the nodes that may cache what the op changed have been told.
  const done = <T>(cb: Cb, p: Promise<T>, map: (v: T) => unknown[] = () => []): void => {
    p.then(
      (v) => settled().then(() => cb(0, ...map(v))),
      (err: unknown) => settled().then(() => fail(cb, err)),
    );
  };
  /** read/write answer with the byte count in the error slot, as fuse-native expects. */
  const count = (cb: Cb, p: Promise<number>): void => {
    p.then(
      (n) => cb(n),
      (err: unknown) => fail(cb, err),
    );
  };
  const stat = (s: FsStat): unknown[] => [s];
  const answerWithStat = options.answerWithStat;
  /**
   * Like `done`, for an op libfuse follows with a getattr of `path` (or an fgetattr): the attributes
   * go with the answer. They are read as that getattr would read them, once the op is over.
   */
  const doneWithStat = <T>(cb: Cb, p: Promise<T>, path: string, attrs: (v: T) => Promise<FsStat>, map: (v: T) => unknown[] = () => []): void => {
    if (answerWithStat === undefined) return done(cb, p, map);
    p.then(
      async (v) => {
        const s = await attrs(v).catch(() => undefined);
        await settled();
        if (s === undefined) cb(0, ...map(v));
        else answerWithStat(path, s, () => cb(0, ...map(v)));
      },
      (err: unknown) => settled().then(() => fail(cb, err)),
    );
  };
  const attrsOf = (path: string) => (): Promise<FsStat> => core.getattr(path);
  const attrsOfFh = (fh: number): Promise<FsStat> => core.fgetattr(fh);
  const ops = {
    init: (cb: Cb) => cb(0),
    // A GETATTR (not a LOOKUP) names an inode the kernel holds: it may be a file open here that
    // another node unlinked (core.getattr).
    getattr: (path: string, cb: Cb) => done(cb, core.getattr(path, ROOT_CRED, { openByPath: owner()?.opcode === FUSE_GETATTR }), stat),
    fgetattr: (_path: string, fd: number, cb: Cb) => done(cb, core.fgetattr(fd), stat),
    access: (path: string, mode: number, cb: Cb) => done(cb, core.access(path, mode)),
    statfs: (_path: string, cb: Cb) => cb(0, core.statfs()),
    // libfuse 2 only uses names here (attributes come from getattr), so no stats are sent.
    readdir: (path: string, cb: Cb) => done(cb, core.readdir(path), (list) => [[".", "..", ...list.map((e) => e.name)]]),
    // No attributes with an open: libfuse asks for them after it only sometimes (auto_cache, a node
    // whose cache is valid), and ones nobody took would wait on that FUSE thread for its next request.
    open: (path: string, flags: number, cb: Cb) => done(cb, core.open(path, flags), (fh) => [fh]),
    // The kernel asks for a create when its lookup missed; if another node made the name since, an
    // open(O_CREAT) without O_EXCL opens that file (POSIX), as the caller may (sqlite on two nodes).
    create: (path: string, mode: number, flags: number, cb: Cb) => {
      const made = core.create(path, mode, ROOT_CRED, O_RDWR, owner()).catch((err: unknown) => {
        if ((flags & O_EXCL) !== 0 || !(err instanceof FsError) || err.code !== "EEXIST") throw err;
        const who = owner();
        return core.open(path, flags & ~O_CREAT, who === undefined ? ROOT_CRED : { uid: who.uid, gid: who.gid });
      });
      doneWithStat(cb, made, path, attrsOfFh, (fh) => [fh]);
    },
    read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      count(cb, core.read(fd, buf, len, pos)),
    write: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      count(cb, core.write(fd, buf, len, pos)),
    // close(2) waits for FLUSH (RELEASE is asynchronous): committing here gives close-to-open.
    flush: (_path: string, fd: number, cb: Cb) => done(cb, core.flush(fd)),
    fsync: (_path: string, _datasync: boolean, fd: number, cb: Cb) => done(cb, core.fsync(fd)),
    release: (_path: string, fd: number, cb: Cb) => done(cb, core.release(fd)),
    truncate: (path: string, size: number, cb: Cb) => doneWithStat(cb, core.truncate(path, size), path, attrsOf(path)),
    ftruncate: (path: string, fd: number, size: number, cb: Cb) => doneWithStat(cb, core.ftruncate(fd, size), path, () => attrsOfFh(fd)),
    unlink: (path: string, cb: Cb) => done(cb, core.unlink(path)),
    rename: (src: string, dest: string, cb: Cb) => done(cb, core.rename(src, dest)),
    link: (src: string, dest: string, cb: Cb) => doneWithStat(cb, core.link(src, dest), dest, attrsOf(dest)),
    symlink: (target: string, path: string, cb: Cb) => doneWithStat(cb, core.symlink(target, path, ROOT_CRED, owner()), path, attrsOf(path)),
    readlink: (path: string, cb: Cb) => done(cb, core.readlink(path), (t) => [t]),
    mkdir: (path: string, mode: number, cb: Cb) => doneWithStat(cb, core.mkdir(path, mode, ROOT_CRED, owner()), path, attrsOf(path)),
    rmdir: (path: string, cb: Cb) => done(cb, core.rmdir(path)),
    // The value is libfuse's request memory, gone once this op is answered (or timed out): copied now.
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) =>
      done(cb, core.setxattr(path, name, Buffer.from(value), flags)),
    getxattr: (path: string, name: string, _position: number, cb: Cb) => done(cb, core.getxattr(path, name), (v) => [v]),
    // trusted.* names are root's to see, as ext4 shows them only with CAP_SYS_ADMIN.
    listxattr: (path: string, cb: Cb) => {
      const root = (owner()?.uid ?? 0) === 0;
      done(cb, core.listxattr(path), (names) => [root ? names : names.filter((n) => !n.startsWith("trusted."))]);
    },
    removexattr: (path: string, name: string, cb: Cb) => done(cb, core.removexattr(path, name)),
    mknod: (path: string, mode: number, dev: number, cb: Cb) => doneWithStat(cb, core.mknod(path, mode, dev, ROOT_CRED, owner()), path, attrsOf(path)),
    chmod: (path: string, mode: number, cb: Cb) => doneWithStat(cb, core.chmod(path, mode), path, attrsOf(path)),
    chown: (path: string, uid: number, gid: number, cb: Cb) => doneWithStat(cb, core.chown(path, uid, gid), path, attrsOf(path)),
    // POSIX and OFD locks (cmd 0 F_GETLK, 1 F_SETLK, 2 F_SETLKW; type 0 read, 1 write, 2 unlock); a
    // F_GETLK answers the conflicting lock's type, start, length and pid (0: a process of another node,
    // which the kernel could not name: it reads pids in the mount's PID namespace).
    lock: (_path: string, fd: number, cmd: number, type: number, start: number, len: number, lockOwner: string, cb: Cb) => {
      const range = fcntlRange(start, len);
      if (range === undefined) return cb(-FS_ERRNO.EINVAL);
      const call = { kind: "posix", cmd: (["get", "set", "wait"] as const)[cmd] ?? "set", type: (["r", "w", "u"] as const)[type] ?? "u", ...range, owner: lockOwner, pid: owner()?.pid ?? 0, ...interruption() } as const;
      done(cb, core.lock(fd, call), (c) => {
        if (c === undefined) return [2, 0, 0, 0];
        const local = c.node === core.nodeId && c.session === core.session;
        return [c.type === "r" ? 0 : 1, c.start, c.end === LOCK_TO_EOF ? 0 : c.end - c.start + 1, local ? c.pid : 0];
      });
    },
    // flock(2): LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8.
    flock: (_path: string, fd: number, op: number, lockOwner: string, cb: Cb) => {
      const type = (op & 8) !== 0 ? "u" : (op & 2) !== 0 ? "w" : "r";
      const call = { kind: "flock", cmd: (op & 4) !== 0 ? "set" : "wait", type, start: 0, end: LOCK_TO_EOF, owner: lockOwner, pid: owner()?.pid ?? 0, ...interruption() } as const;
      done(cb, core.lock(fd, call));
    },
    // Times in ms; a time of 2^63 or more is UTIME_OMIT, which keeps that one. CloudFS's fuse-native
    // build tells the nanoseconds within each ms (`utimeNs`).
    utimens: (path: string, atime: number, mtime: number, cb: Cb) => {
      const [atimeNs, mtimeNs] = options.utimeNs?.() ?? [0, 0];
      const time = (ms: number, ns: number): NsTime | undefined => (ms >= 2 ** 63 ? undefined : { ms, ns });
      doneWithStat(cb, core.utimens(path, time(atime, atimeNs), time(mtime, mtimeNs)), path, attrsOf(path));
    },
  };
  return options.byteNames === true ? withByteNames(ops as unknown as FuseOps) : (ops as unknown as FuseOps);
}

/** The ops whose strings are paths or names: the rest only pass a path they do not use. */
const PATH_OPS = new Set([
  "getattr", "access", "readdir", "open", "create", "truncate", "unlink", "rename", "link", "symlink", "readlink",
  "mkdir", "rmdir", "setxattr", "getxattr", "listxattr", "removexattr", "mknod", "chmod", "chown", "utimens",
]);

/** See `FuseOpsOptions.byteNames`. Every string an op in PATH_OPS takes is a path or an xattr name. */
function withByteNames(ops: FuseOps): FuseOps {
  const wrapped: Record<string, (...args: unknown[]) => void> = {};
  for (const [name, op] of Object.entries(ops) as [string, (...args: unknown[]) => void][]) {
    if (!PATH_OPS.has(name)) {
      wrapped[name] = op;
      continue;
    }
    wrapped[name] = (...args: unknown[]) => {
      const converted = args.map((a) => (typeof a === "string" ? kernelToName(a) : a));
      if (name === "readdir" || name === "readlink") {
        const cb = args.at(-1) as Cb;
        converted[converted.length - 1] = (err: number, result?: unknown, ...rest: unknown[]) =>
          cb(err, Array.isArray(result) ? result.map((n: string) => nameToKernel(n)) : typeof result === "string" ? nameToKernel(result) : result, ...rest);
      }
      op(...converted);
    };
  }
  return wrapped as FuseOps;
}
