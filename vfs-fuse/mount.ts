import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { NatsConnection } from "@nats-io/transport-node";
import { CloudFsCore, DEFAULT_OP_TIMEOUT_MS, type FsStat } from "./core.js";
import { CACHED_FUSE_TUNING, cloudFsMountOptions, UNCACHED_FUSE_TUNING, type FuseMountTuning } from "./fuse-options.js";
import type { MetaStore } from "./meta-store.js";
import { decodeName, nameToKernel } from "./name-codec.js";
import { makeFuseOps, type FuseOps } from "./fuse-ops.js";
import { announceChanges, type ChangeAnnouncer } from "./change-notices.js";

const run = promisify(execFile);

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  _fuseOptions(): string;
  /**
   * `[uid, gid, pid, opcode, unique]` of the request being dispatched (CloudFS's build only; pid in
   * our PID namespace; the kernel's opcode and request id).
   */
  caller?: [uid: number, gid: number, pid: number, opcode?: number, unique?: number];
  /** Whether the kernel asked to interrupt request `unique` (a signal came to its caller; CloudFS's build only). */
  interrupted?(unique: number): boolean;
  /** The nanoseconds within the ms of the utimens being dispatched, [atime's, mtime's] (CloudFS's build only). */
  utimeNs?: [number, number];
  /** Answers an op with the attributes libfuse asks for next (CloudFS's build only; see fuse-ops.ts). */
  answerWithStat?(path: string, stat: FsStat, answer: () => void): void;
  /** Drops the kernel's cached attributes of an inode (CloudFS's build only); false if it has none. */
  invalidate?(ino: number): boolean;
  /** Drops the kernel's cached name `name` in directory `parentIno` (CloudFS's build only). */
  invalidateEntry?(parentIno: number, name: Buffer): boolean;
}
interface FuseClass {
  new (mnt: string, ops: FuseOps, opts: Record<string, unknown>): FuseInstance;
  prototype: FuseInstance;
}

/**
 * CloudFS's build of fuse-native (`native/build.mjs`: stock + the caller's uid/gid + kernel cache
 * invalidation) when it has been built, else the stock module, with which files created through the
 * mount belong to root and the kernel caches no attributes.
 */
function loadFuseNative(): { Fuse: FuseClass; knowsCaller: boolean } {
  const require = createRequire(import.meta.url);
  for (const rel of ["./native/out/index.js", "../../vfs-fuse/native/out/index.js"]) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dirname(path), "build", "Release", "fuse.node"))) {
      return { Fuse: require(path) as FuseClass, knowsCaller: true };
    }
  }
  return { Fuse: require("fuse-native") as FuseClass, knowsCaller: false };
}

const { Fuse: FuseNative, knowsCaller } = loadFuseNative();
/** Paths and names cross as latin1, so any bytes (CloudFS's build; the stock module decodes UTF-8). */
const BYTE_NAMES = (FuseNative as unknown as { BYTE_NAMES?: boolean }).BYTE_NAMES === true;

/** Whether mounts learn the calling process's uid/gid (needs `node vfs-fuse/native/build.mjs`). */
export const FUSE_KNOWS_CALLER = knowsCaller;

/**
 * The kernel caches what the loaded fuse-native can invalidate (see `CACHED_FUSE_TUNING`), else nearly
 * nothing: a build from before kernel-channel.c knows the caller but cannot invalidate.
 */
export const DEFAULT_FUSE_TUNING: FuseMountTuning =
  typeof (FuseNative.prototype as FuseInstance).invalidate === "function" ? CACHED_FUSE_TUNING : UNCACHED_FUSE_TUNING;

/**
 * A fuse-native file system with extra libfuse options (`big_writes`, `max_write`…) appended to the
 * `-o` string fuse-native builds; used by CloudFS and by the bench's in-memory FUSE ceiling.
 */
export function createFuse(
  mountpoint: string,
  ops: FuseOps,
  extraOptions: readonly string[],
  fuseNativeOptions: Record<string, unknown> = {},
): FuseInstance {
  const Fuse = fuseClassWith(extraOptions);
  return new Fuse(mountpoint, ops, fuseNativeOptions);
}

/** fuse-native with libfuse options it does not know appended to its own `-o` string. */
function fuseClassWith(extra: readonly string[]): FuseClass {
  return class extends FuseNative {
    override _fuseOptions(): string {
      const own = super._fuseOptions();
      const all = extra.join(",");
      return own === "" ? `-o${all}` : `${own},${all}`;
    }
  } as unknown as FuseClass;
}

export interface MountCloudFsOptions {
  readonly nc: NatsConnection;
  readonly mountpoint: string;
  readonly cacheDir: string;
  readonly cacheBytes?: number;
  /** Names this node in orphan records (stable across restarts so it cleans its own leftovers). */
  readonly nodeId?: string;
  readonly replicas?: number;
  readonly opTimeoutMs?: number;
  readonly tuning?: FuseMountTuning;
  /** The node's journal and dirty blocks, kept across restarts; default `<cacheDir>-journal`. */
  readonly journalDir?: string;
  /** Strict mode: close(2) returns once JetStream has stored the file (see the README). */
  readonly strict?: boolean;
  /** Where this node serves its cached blocks to peers over direct links (core.ts); none: over NATS. */
  readonly dataHost?: string;
}

export interface CloudFsMount {
  readonly mountpoint: string;
  readonly core: CloudFsCore;
  /** Unmounts, flushes open files and stops watching; the NATS connection stays the caller's. */
  close(): Promise<void>;
}

/**
 * Mounts CloudFS at `mountpoint` with FUSE. A stale mount left by a crashed process ("Transport
 * endpoint is not connected") is lazily unmounted first. The returned `core` is the same file system
 * without FUSE, for callers in this process — which must never touch the mount with sync fs calls.
 */
export async function mountCloudFS(options: MountCloudFsOptions): Promise<CloudFsMount> {
  const mountpoint = resolve(options.mountpoint);
  await cleanStaleMount(mountpoint);
  await mkdir(mountpoint, { recursive: true });
  const opTimeoutMs = options.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
  const core = await CloudFsCore.open({
    nc: options.nc,
    cacheDir: options.cacheDir,
    opTimeoutMs,
    ...(options.cacheBytes !== undefined ? { cacheBytes: options.cacheBytes } : {}),
    ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.journalDir !== undefined ? { journalDir: options.journalDir } : {}),
    ...(options.strict !== undefined ? { strict: options.strict } : {}),
    ...(options.dataHost !== undefined ? { dataHost: options.dataHost } : {}),
  });
  const Fuse = fuseClassWith(cloudFsMountOptions(options.tuning ?? DEFAULT_FUSE_TUNING));
  let fuse: FuseInstance | undefined = undefined;
  const caller = (): { uid: number; gid: number; pid: number; opcode?: number; unique?: number } | undefined => {
    const c = fuse?.caller;
    return c === undefined ? undefined : { uid: c[0], gid: c[1], pid: c[2], ...(c[3] !== undefined ? { opcode: c[3] } : {}), ...(c[4] !== undefined ? { unique: c[4] } : {}) };
  };
  const canInterrupt = (FuseNative.prototype as FuseInstance).interrupted;
  const interrupted = canInterrupt === undefined ? undefined : (unique: number): boolean => canInterrupt.call(fuse, unique);
  // fuse-native's own per-op timeout is a backstop only: our ops are bounded by opTimeoutMs per NATS call.
  let announcer: ChangeAnnouncer | undefined;
  // A change's system call returns once the nodes that may cache what it changed have dropped it.
  const settled = (): Promise<void> => announcer?.settled() ?? Promise.resolve();
  const withStat = (FuseNative.prototype as FuseInstance).answerWithStat;
  const answerWithStat =
    withStat === undefined
      ? undefined
      : (path: string, stat: FsStat, answer: () => void): void => withStat.call(fuse, BYTE_NAMES ? nameToKernel(path) : path, stat, answer);
  const ops = makeFuseOps(core, {
    caller,
    settled,
    byteNames: BYTE_NAMES,
    utimeNs: () => fuse?.utimeNs,
    ...(answerWithStat !== undefined ? { answerWithStat } : {}),
    ...(interrupted !== undefined ? { interrupted } : {}),
  });
  fuse = new Fuse(mountpoint, ops, {
    // A blocking lock waits as long as the lock is held.
    timeout: { default: opTimeoutMs * 3, lock: false, flock: false },
  });
  const mounted = fuse;
  try {
    await new Promise<void>((res, rej) => mounted.mount((err) => (err ? rej(err) : res())));
  } catch (err) {
    await core.close();
    throw err;
  }
  const unwatchOwn = invalidateOnChange(core.meta, mounted);
  if (mounted.invalidate !== undefined && mounted.invalidateEntry !== undefined) {
    const { invalidate, invalidateEntry } = mounted as Required<Pick<FuseInstance, "invalidate" | "invalidateEntry">>;
    announcer = announceChanges(
      options.nc,
      core.meta,
      core.nodeId,
      {
        inode: (ino) => {
          invalidate.call(mounted, ino);
          core.wakeLockWaiters(ino);
        },
        entry: (parent, name) => void invalidateEntry.call(mounted, parent, decodeName(name)),
        noticed: () => core.noticed(),
      },
      (change) => core.cacheHolders(change),
    );
    core.cachesInKernel = true;
    core.invalidateKernel = (ino) => void invalidate.call(mounted, ino);
  }
  const unwatch = (): void => {
    // From here on no change is announced: recalls must not promise it (leases.ts, read delegations).
    core.cachesInKernel = false;
    core.invalidateKernel = undefined;
    unwatchOwn();
    announcer?.close();
  };
  let closing: Promise<void> | undefined;
  return {
    mountpoint,
    core,
    close() {
      closing ??= (async () => {
        unwatch();
        await new Promise<void>((res) => mounted.unmount(() => res()));
        await core.close();
      })();
      return closing;
    },
  };
}

/**
 * Tells the kernel about what changed in the replica, so it does not serve it from its cache again:
 * the attributes of every inode another node changed (seen by the watch) and of the directory of
 * every entry it changed (its link count and times), and each name it removed or pointed at another
 * inode. This node's own changes come through the kernel, which already holds what they left (a
 * setattr's or create's reply, its own size after a write, a directory it changed itself dropped):
 * telling it again would only make it ask, and a reply in flight would go out uncacheable. The one
 * exception is a hard-linked inode, which the kernel holds once per name: its other names are told.
 */
function invalidateOnChange(meta: MetaStore, fuse: FuseInstance): () => void {
  if (fuse.invalidate === undefined || fuse.invalidateEntry === undefined) return () => {};
  const invalidate = fuse.invalidate.bind(fuse);
  const invalidateEntry = fuse.invalidateEntry.bind(fuse);
  return meta.onChange((change) => {
    if (!change.fromWatch) {
      if (change.kind !== "inode") return;
      const rec = meta.inode(change.ino)?.value;
      if (rec !== undefined && rec.type !== "dir" && rec.nlink > 1) invalidate(change.ino);
      return;
    }
    if (change.kind === "inode") return void invalidate(change.ino);
    invalidate(change.parent);
    if (change.fromWatch && change.nameMoved) invalidateEntry(change.parent, decodeName(change.name));
  });
}

/** Lazily unmounts whatever FUSE file system is (still) mounted at `mountpoint`. */
export async function cleanStaleMount(mountpoint: string): Promise<void> {
  const mounts = await readFile("/proc/self/mounts", "utf8");
  const mounted = mounts.split("\n").some((l) => l.split(" ")[1] === mountpoint);
  let stale = false;
  try {
    await stat(mountpoint);
  } catch (err) {
    stale = (err as NodeJS.ErrnoException).code === "ENOTCONN";
  }
  if (mounted || stale) await run("fusermount", ["-uz", mountpoint]).catch(() => run("umount", ["-l", mountpoint]));
}
