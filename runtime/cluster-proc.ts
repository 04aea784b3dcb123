import { lstat, readdir, readFile } from "node:fs/promises";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decode, encode, guarded, replyTo } from "../pseudokernel/index.js";
import { cleanStaleMount, createFuse, FS_ERRNO, type FuseOps } from "../vfs-fuse/index.js";

/** Every runtime answers here (no queue group) with its processes' procfs files (see `ProcSnapshot`). */
export const CLUSTER_PROCFS_SUBJECT = "oneos.cluster.procfs";
/** Where a node's own procfs is, as its processes see it: the cluster /proc's local entries point there. */
export const REAL_PROC_IN_NAMESPACE = "/proc/.oneos-real";
const REAL_NAME = ".oneos-real";
/** A remote entry is at most this old (the README's promise). */
const FRESH_MS = 1000;
/**
 * A gather waits for an answer from every node up, this long at most (a node reading 100 processes'
 * files answers some 100 ms after one with few: waiting only a stall after the first answer dropped
 * the slow nodes' processes from `ps`, one listing in two with 300 processes).
 */
const GATHER_MAX_MS = 500;
/** The files a remote process's directory has: what ps, top, pgrep and pkill read. */
const FILES = ["cmdline", "comm", "stat", "statm", "status"] as const;
/** At most this many processes a node tells about (a NATS message stays far below its 1 MiB limit). */
const MAX_REPORTED = 400;
const CLOCK_TICKS = 100;

type Cb = (err: number, ...rest: unknown[]) => void;
type File = (typeof FILES)[number];

/** One node's processes (those with cluster PIDs) as its procfs shows them, and its boot time. */
interface ProcSnapshot {
  readonly node: string;
  /** Seconds since the epoch (`btime` of /proc/stat): start times are ticks after it. */
  readonly btime: number;
  readonly procs: readonly { readonly pid: number; readonly files: Readonly<Record<File, string>> }[];
}

interface RemoteProc {
  readonly uid: number;
  readonly gid: number;
  readonly files: ReadonlyMap<File, Buffer>;
}

export interface ClusterProcOptions {
  readonly nc: NatsConnection;
  readonly node: string;
  /** Where the runtime mounts the file system (the namespace holder binds it onto /proc). */
  readonly mountpoint: string;
  /** The node's own procfs in the runtime's view, once the namespace is up (async access only: see below). */
  realProc(): string | undefined;
  /** This node's processes with cluster PIDs. */
  localPids(): Iterable<number>;
  /**
   * How many nodes are not down (this one too): the answers a gather waits for. A suspect node counts
   * (late heartbeats on a busy machine): counting only ready ones ended a gather before they answered.
   */
  upNodes(): number;
  readonly logger: Logger;
}

const ENOENT = -FS_ERRNO.ENOENT;
const EIO = -FS_ERRNO.EIO;
const EBADF = -FS_ERRNO.EBADF;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/**
 * The cluster's /proc, as every node's processes see it: the node's own procfs, with the PID
 * directories of processes on other nodes beside its own, read-only. Served by the runtime over FUSE
 * and bound onto /proc in the node's mount namespace; the node's procfs is mounted under it at
 * `/proc/.oneos-real`.
 *  - Every entry of the node's procfs (its PIDs, `self`, `meminfo`, `sys`…) is a symbolic link into
 *    it, so a program reads the kernel's own files, with their magic links (`/proc/self/fd/N`,
 *    `exe`) intact, and machine-wide files stay the node's.
 *  - A process on another node with a cluster PID is a directory with cmdline, comm, stat, statm
 *    and status, as that node's procfs had them at most a second ago (every runtime answers a gather
 *    on `CLUSTER_PROCFS_SUBJECT`), owned by its user: ps, top, pgrep and pkill list it.
 * Its operations never block the event loop; the runtime itself must never touch the node's /proc
 * synchronously: the FUSE request would wait for this very thread.
 */
export class ClusterProc {
  readonly #o: ClusterProcOptions;
  readonly mountpoint: string;
  readonly #fuse: ReturnType<typeof createFuse>;
  #subscription: Subscription | undefined;
  #remote = new Map<number, RemoteProc>();
  #gathered = 0;
  #gathering: Promise<void> | undefined;
  #btime: number | undefined;
  readonly #open = new Map<number, Buffer>();
  #nextFd = 1;

  private constructor(options: ClusterProcOptions) {
    this.#o = options;
    this.mountpoint = options.mountpoint;
    this.#fuse = createFuse(options.mountpoint, this.#ops(), [
      "fsname=oneos-proc",
      "subtype=oneos-proc",
      "allow_other",
      // Sizes are 0, as procfs's are: reads go to us whatever the size says.
      "direct_io",
      "entry_timeout=1",
      "attr_timeout=1",
      "negative_timeout=0",
    ], { mkdir: true });
  }

  static async mount(options: ClusterProcOptions): Promise<ClusterProc> {
    await cleanStaleMount(options.mountpoint);
    const proc = new ClusterProc(options);
    await new Promise<void>((resolve, reject) => proc.#fuse.mount((err) => (err ? reject(err) : resolve())));
    proc.#subscription = options.nc.subscribe(CLUSTER_PROCFS_SUBJECT, {
      callback: guarded((msg) => {
        void proc.#snapshot().then(
          (snapshot) => replyTo(msg, snapshot),
          () => replyTo(msg, { node: options.node, btime: 0, procs: [] }),
        );
      }),
    });
    return proc;
  }

  async close(): Promise<void> {
    this.#subscription?.unsubscribe();
    await new Promise<void>((resolve) => this.#fuse.unmount(() => resolve()));
  }

  /** This node's processes, read from its procfs (their PIDs there are their cluster PIDs). */
  async #snapshot(): Promise<ProcSnapshot> {
    const real = this.#o.realProc();
    const btime = await this.#bootTime();
    if (real === undefined) return { node: this.#o.node, btime, procs: [] };
    const pids = [...this.#o.localPids()].slice(0, MAX_REPORTED);
    const procs = await Promise.all(
      pids.map(async (pid) => {
        try {
          const texts = await Promise.all(FILES.map((f) => readFile(`${real}/${pid}/${f}`, "latin1")));
          return { pid, files: Object.fromEntries(FILES.map((f, i) => [f, texts[i]!])) as Record<File, string> };
        } catch {
          return undefined; // ended meanwhile
        }
      }),
    );
    return { node: this.#o.node, btime, procs: procs.filter((p) => p !== undefined) };
  }

  async #bootTime(): Promise<number> {
    if (this.#btime === undefined) {
      const stat = await readFile("/proc/stat", "utf8");
      this.#btime = Number(/^btime (\d+)/m.exec(stat)?.[1] ?? 0);
    }
    return this.#btime;
  }

  /** The other nodes' processes, gathered again when the last gather is older than `FRESH_MS`. */
  async #fresh(): Promise<ReadonlyMap<number, RemoteProc>> {
    if (Date.now() - this.#gathered > FRESH_MS) {
      this.#gathering ??= this.#gather().finally(() => (this.#gathering = undefined));
      await this.#gathering;
    }
    return this.#remote;
  }

  async #gather(): Promise<void> {
    const started = Date.now();
    const localBtime = await this.#bootTime();
    const remote = new Map<number, RemoteProc>();
    try {
      const replies = await this.#o.nc.requestMany(CLUSTER_PROCFS_SUBJECT, encode({ type: "procfs" }), {
        strategy: "count",
        maxMessages: Math.max(1, this.#o.upNodes()),
        maxWait: GATHER_MAX_MS,
      });
      for await (const msg of replies) {
        const snapshot = parseSnapshot(decode(msg.data));
        if (snapshot === undefined || snapshot.node === this.#o.node) continue;
        for (const p of snapshot.procs) remote.set(p.pid, remoteProc(p.files, snapshot.btime, localBtime));
      }
    } catch (error) {
      this.#o.logger.debug({ err: String(error) }, "cluster /proc: gather failed");
    }
    this.#remote = remote;
    this.#gathered = started;
  }

  #ops(): FuseOps {
    const dir = (uid = 0, gid = 0) => ({ mode: S_IFDIR | 0o555, size: 0, nlink: 2, uid, gid, mtime: Date.now(), atime: Date.now(), ctime: Date.now() });
    const file = (uid: number, gid: number) => ({ mode: S_IFREG | 0o444, size: 0, nlink: 1, uid, gid, mtime: Date.now(), atime: Date.now(), ctime: Date.now() });
    const link = (target: string) => ({ mode: S_IFLNK | 0o777, size: target.length, nlink: 1, uid: 0, gid: 0, mtime: Date.now(), atime: Date.now(), ctime: Date.now() });
    /** `/NAME` or `/PID/FILE` → its parts. */
    const parts = (path: string): string[] => path.split("/").filter(Boolean);
    const remoteOf = async (name: string): Promise<RemoteProc | undefined> => {
      if (!/^\d+$/.test(name)) return undefined;
      const remote = (await this.#fresh()).get(Number(name));
      // A PID the node has itself is the node's, whatever another says.
      return remote === undefined || (await this.#local(name)) ? undefined : remote;
    };
    const ops = {
      getattr: (path: string, cb: Cb) => {
        void (async () => {
          const [name, sub, more] = parts(path);
          if (name === undefined) return cb(0, dir());
          if (name === REAL_NAME && sub === undefined) return cb(0, dir());
          const remote = await remoteOf(name);
          if (remote !== undefined) {
            if (sub === undefined) return cb(0, dir(remote.uid, remote.gid));
            return more === undefined && remote.files.has(sub as File) ? cb(0, file(remote.uid, remote.gid)) : cb(ENOENT);
          }
          if (sub !== undefined) return cb(ENOENT);
          return (await this.#local(name)) ? cb(0, link(`${REAL_PROC_IN_NAMESPACE}/${name}`)) : cb(ENOENT);
        })().catch(() => cb(EIO));
      },
      readlink: (path: string, cb: Cb) => {
        const [name, sub] = parts(path);
        if (name === undefined || sub !== undefined) return cb(ENOENT);
        if (name !== "self" && name !== "thread-self") return cb(0, `${REAL_PROC_IN_NAMESPACE}/${name}`);
        // As procfs answers: the caller's own PID (and thread) in its namespace, which the node's procfs has.
        const thread = this.#fuse.caller?.[2];
        void (thread === undefined ? Promise.resolve(undefined) : callerIds(thread)).then(
          (ids) => (ids === undefined ? cb(0, `${REAL_PROC_IN_NAMESPACE}/${name}`) : cb(0, name === "self" ? `${ids.pid}` : `${ids.pid}/task/${ids.tid}`)),
          () => cb(EIO),
        );
      },
      readdir: (path: string, cb: Cb) => {
        void (async () => {
          const [name, sub] = parts(path);
          if (name === undefined) {
            const real = this.#o.realProc();
            const [own, remote] = await Promise.all([real === undefined ? [] : readdir(real).catch(() => [] as string[]), this.#fresh()]);
            const ownSet = new Set(own);
            const others = [...remote.keys()].map(String).filter((p) => !ownSet.has(p));
            return cb(0, [REAL_NAME, ...own, ...others]);
          }
          const remote = sub === undefined ? await remoteOf(name) : undefined;
          return remote === undefined ? cb(ENOENT) : cb(0, [...remote.files.keys()]);
        })().catch(() => cb(EIO));
      },
      open: (path: string, _flags: number, cb: Cb) => {
        void (async () => {
          const [name, sub] = parts(path);
          const remote = name === undefined ? undefined : await remoteOf(name);
          const data = remote?.files.get(sub as File);
          if (data === undefined) return cb(ENOENT);
          const fd = this.#nextFd++;
          this.#open.set(fd, data);
          return cb(0, fd);
        })().catch(() => cb(EIO));
      },
      read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
        const data = this.#open.get(fd);
        if (data === undefined) return cb(EBADF);
        const end = Math.min(data.length, pos + len);
        if (end <= pos) return cb(0);
        data.copy(buf, 0, pos, end);
        return cb(end - pos);
      },
      release: (_path: string, fd: number, cb: Cb) => {
        this.#open.delete(fd);
        cb(0);
      },
    };
    return ops as unknown as FuseOps;
  }

  /** Whether the node's own procfs has this entry (`self`, `meminfo`, one of its PIDs). */
  async #local(name: string): Promise<boolean> {
    const real = this.#o.realProc();
    if (real === undefined || name.includes("/")) return false;
    return await lstat(`${real}/${name}`).then(
      () => true,
      () => false,
    );
  }
}

/** A thread's process and thread ids in its own (innermost) PID namespace, from its status in ours. */
async function callerIds(thread: number): Promise<{ pid: number; tid: number } | undefined> {
  const status = await readFile(`/proc/${thread}/status`, "utf8").catch(() => "");
  const last = (key: string): number | undefined => {
    const line = new RegExp(`^${key}:\\s+([\\d\\t ]+)$`, "m").exec(status)?.[1];
    const n = Number(line?.trim().split(/\s+/).at(-1));
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  };
  const pid = last("NStgid");
  const tid = last("NSpid");
  return pid === undefined || tid === undefined ? undefined : { pid, tid };
}

/** A snapshot as another runtime sent it, checked; undefined when it is not one. */
function parseSnapshot(value: unknown): ProcSnapshot | undefined {
  const s = value as ProcSnapshot;
  if (typeof s !== "object" || s === null || typeof s.node !== "string" || typeof s.btime !== "number" || !Array.isArray(s.procs)) return undefined;
  const procs = s.procs.filter(
    (p) => typeof p === "object" && p !== null && Number.isSafeInteger(p.pid) && p.pid > 0 && typeof p.files === "object" && p.files !== null && FILES.every((f) => typeof p.files[f] === "string"),
  );
  return { node: s.node, btime: s.btime, procs };
}

/**
 * A remote process's files as ours: its start time (ticks after its node's boot) moved to ticks after
 * this node's, and its owner from the effective uid and gid of its status.
 */
function remoteProc(files: Readonly<Record<File, string>>, btime: number, localBtime: number): RemoteProc {
  const out = new Map<File, Buffer>();
  for (const f of FILES) out.set(f, Buffer.from(files[f], "latin1"));
  const stat = files.stat;
  const close = stat.lastIndexOf(")");
  if (close > 0 && btime !== localBtime) {
    // Fields after the command name (which may hold spaces) start after the last ')'; starttime is the 20th of them.
    const rest = stat.slice(close + 2).split(" ");
    const start = Number(rest[19]);
    if (Number.isFinite(start)) rest[19] = String(Math.max(0, start + (btime - localBtime) * CLOCK_TICKS));
    out.set("stat", Buffer.from(`${stat.slice(0, close + 2)}${rest.join(" ")}`, "latin1"));
  }
  const ids = (key: string): number => Number(new RegExp(`^${key}:\\s+\\d+\\s+(\\d+)`, "m").exec(files.status)?.[1] ?? 0);
  return { uid: ids("Uid"), gid: ids("Gid"), files: out };
}
