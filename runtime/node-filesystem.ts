import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { NatsConnection } from "@nats-io/transport-node";
import { KernelError, type CloudFsWriteBackFigures } from "../pseudokernel/index.js";
import { cleanStaleMount, cloudFsNodeStatus } from "../vfs-fuse/index.js";
import { FIRST_UID as FIRST_CLUSTER_UID } from "./auth/index.js";
import { PIDNS_PROGRAM } from "./native-addon.js";
import { REAL_PROC_IN_NAMESPACE } from "./cluster-proc.js";

/** CloudFS paths every process sees at the same absolute place; the rest of the tree is the node's own. */
export const CLOUDFS_PREFIXES = ["/home"] as const;

/** The daemon mounts within this, or it is reported as failed. */
const MOUNT_TIMEOUT_MS = 60_000;
/** A daemon that dies is started again after this (doubling up to a minute). */
const RESTART_DELAY_MS = 1000;
/** Longest the heartbeat's sample of the daemon's write-back waits: a busy daemon is reported next time. */
const WRITE_BACK_SAMPLE_TIMEOUT_MS = 500;

const FS_DAEMON = ((): string => {
  const sibling = fileURLToPath(new URL("../vfs-fuse/fs-daemon.js", import.meta.url));
  return existsSync(sibling) ? sibling : fileURLToPath(new URL("../dist/vfs-fuse/fs-daemon.js", import.meta.url));
})();

export interface NodeFilesystemOptions {
  readonly nats: string;
  readonly node: string;
  /** Node-local state: the mount point and the block cache go here. */
  readonly stateDir: string;
  readonly replicas?: number;
  readonly cacheBytes?: number;
  readonly logger: Logger;
  /** The node's credentials file, passed to the daemon (it connects as the node). */
  readonly credentialsFile?: string;
  /** The host name of the namespace's own UTS namespace; without, it shares the machine's. */
  readonly hostname?: string;
  /**
   * The cluster /proc's mount (cluster-proc.ts), bound onto the namespace's /proc with the node's own
   * procfs under it at `REAL_PROC_IN_NAMESPACE`; without, /proc is the node's procfs alone.
   */
  readonly clusterProc?: string;
  /** The node's data address: the daemon serves its cached blocks to peers there (vfs-fuse/block-link.ts). */
  readonly dataHost?: string;
}

/**
 * What processes of this node see: CloudFS mounted by a daemon child (so a slow file system never
 * blocks the runtime's event loop), and a mount namespace in which the mount's `/home` is bound onto
 * `/home`, so every node shows its OWN mount, even with three nodes on one machine. The mount, network
 * and UTS namespaces are held open by one `sleep` process and rebuilt with the mount when the daemon
 * dies. The PID namespace, in which each process gets its cluster PID, is held by `oneos-pidns` and
 * lives as long as the node: its end would end every process in it. The mount namespace's `/proc` is
 * that PID namespace's.
 */
export class NodeFilesystem {
  readonly mountpoint: string;
  #options: NodeFilesystemOptions;
  #daemon: ChildProcess | undefined;
  #holder: ChildProcess | undefined;
  #pidns: ChildProcess | undefined;
  #closing = false;
  #restarting = false;
  #restartDelay = RESTART_DELAY_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #sampling = false;
  /** What the daemon last said it holds unstored (the node's metrics); undefined until it answers. */
  writeBack: CloudFsWriteBackFigures | undefined;

  private constructor(options: NodeFilesystemOptions) {
    this.#options = options;
    this.mountpoint = join(options.stateDir, "mnt");
  }

  /** Asks the daemon for its dirty bytes, oldest unstored change and pending changes (one request out at most). */
  async sampleWriteBack(nc: NatsConnection): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const s = await cloudFsNodeStatus(nc, this.#options.node, WRITE_BACK_SAMPLE_TIMEOUT_MS);
      this.writeBack = s === undefined ? undefined : { dirtyBytes: s.dirtyBytes, oldestDirtyAgeMs: s.oldestDirtyAgeMs, pendingOps: s.pendingOps };
    } finally {
      this.#sampling = false;
    }
  }

  /** Mounts CloudFS and prepares the namespace; rejects when FUSE or namespaces are not available. */
  static async start(options: NodeFilesystemOptions): Promise<NodeFilesystem> {
    if (!existsSync("/dev/fuse")) throw new KernelError("EIO", "no /dev/fuse: CloudFS cannot be mounted here");
    if (process.getuid?.() !== 0) throw new KernelError("EPERM", "CloudFS mounts and namespaces need root");
    const fs = new NodeFilesystem(options);
    // On a cluster's first start the CloudFS buckets are being created while streams elect leaders:
    // the daemon may time out then; it is tried again for a while.
    const deadline = Date.now() + MOUNT_TIMEOUT_MS;
    for (;;) {
      try {
        await fs.#startDaemon();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        options.logger.warn({ err: (error as Error).message }, "CloudFS not mounted yet; retrying");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    try {
      await fs.#startPidNamespace();
      await fs.#startHolder();
    } catch (error) {
      await fs.close();
      throw error;
    }
    return fs;
  }

  /** `/proc/PID/ns/mnt` of the namespace children enter, or undefined while it is being rebuilt. */
  get namespace(): string | undefined {
    const pid = this.#holder?.pid;
    return pid === undefined || this.#holder?.exitCode !== null ? undefined : `/proc/${pid}/ns/mnt`;
  }

  /**
   * `/proc/PID/ns/net` of the node's own network namespace (held by the same process; only `lo`, up),
   * so "localhost" on one node is that node's even with three nodes on one machine.
   */
  get netNamespace(): string | undefined {
    return this.namespace === undefined ? undefined : `/proc/${this.#holder!.pid}/ns/net`;
  }

  /** `/proc/PID/ns/uts` of the node's own UTS namespace (its host name), if it has one. */
  get utsNamespace(): string | undefined {
    return this.namespace === undefined || this.#options.hostname === undefined ? undefined : `/proc/${this.#holder!.pid}/ns/uts`;
  }

  /**
   * `/proc/PID/ns/pid_for_children` of the node's PID namespace (spawn.c enters it and gives each
   * child its cluster PID there), or undefined while the mount namespace is being rebuilt.
   */
  get pidNamespace(): string | undefined {
    const pid = this.#pidns?.pid;
    return this.namespace === undefined || pid === undefined || this.#pidns!.exitCode !== null ? undefined : `/proc/${pid}/ns/pid_for_children`;
  }

  /**
   * The node's own procfs (its PID namespace's) in the runtime's view, through the namespace holder's
   * root. Under the cluster /proc it is below the runtime's own FUSE mount: async access only.
   */
  get realProc(): string | undefined {
    const pid = this.holderPid;
    if (pid === undefined) return undefined;
    return `/proc/${pid}/root${this.#options.clusterProc !== undefined ? REAL_PROC_IN_NAMESPACE : "/proc"}`;
  }

  /** A process living in the namespaces (its `/proc/PID/net/tcp` is the node's socket table). */
  get holderPid(): number | undefined {
    return this.namespace === undefined ? undefined : this.#holder!.pid;
  }

  /** The path in the runtime's own view for a path as processes see it. */
  toLocal(path: string): string {
    // `..` first, as the kernel would: `/home/../../x` is the host's `/x`, not a path beside the mount point.
    const absolute = path.startsWith("/") ? posix.normalize(path) : path;
    for (const prefix of CLOUDFS_PREFIXES) {
      if (absolute === prefix || absolute.startsWith(`${prefix}/`)) return join(this.mountpoint, absolute);
    }
    return path;
  }

  async #startDaemon(): Promise<void> {
    // A runtime killed hard leaves its mount behind, "not connected": detach it first.
    await cleanStaleMount(this.mountpoint);
    await mkdir(this.mountpoint, { recursive: true });
    const args = [
      FS_DAEMON,
      "--nats", this.#options.nats,
      "--mount", this.mountpoint,
      "--cache", join(this.#options.stateDir, "cache"),
      "--node-id", this.#options.node,
      ...(this.#options.replicas !== undefined ? ["--replicas", String(this.#options.replicas)] : []),
      ...(this.#options.cacheBytes !== undefined ? ["--cache-bytes", String(this.#options.cacheBytes)] : []),
      ...(this.#options.credentialsFile !== undefined ? ["--creds", this.#options.credentialsFile] : []),
      ...(this.#options.dataHost !== undefined ? ["--data-host", this.#options.dataHost] : []),
    ];
    const daemon = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    this.#daemon = daemon;
    const lines = createInterface({ input: daemon.stdout! });
    const ready = await new Promise<{ ready: boolean; error?: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ ready: false, error: `not mounted after ${MOUNT_TIMEOUT_MS} ms` }), MOUNT_TIMEOUT_MS);
      lines.once("line", (line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as { ready: boolean; error?: string });
        } catch {
          resolve({ ready: false, error: `unexpected output: ${line}` });
        }
      });
      daemon.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ ready: false, error: `exited with ${code}` });
      });
    });
    if (!ready.ready) {
      daemon.kill("SIGKILL");
      throw new KernelError("EIO", `CloudFS daemon: ${ready.error ?? "failed"}`);
    }
    this.#restartDelay = RESTART_DELAY_MS;
    daemon.once("exit", (code, signal) => this.#onDaemonExit(code, signal));
    this.#options.logger.info({ mount: this.mountpoint }, "CloudFS mounted");
  }

  /**
   * The namespace's `/etc/passwd` and `/etc/group`: the host's, plus the cluster's users (so `id`,
   * `ls -l` and git name them). Rewritten in place when the users change: the bind follows the inode.
   */
  async writeAccounts(users: readonly { name: string; uid: number; gid: number; home: string }[]): Promise<void> {
    const [passwd, group] = await Promise.all([readFile("/etc/passwd", "utf8"), readFile("/etc/group", "utf8")]);
    const taken = (text: string): Set<string> => new Set(text.split("\n").map((l) => l.split(":")[0]!));
    const hostUsers = taken(passwd);
    const hostGroups = taken(group);
    const cluster = users.filter((u) => u.uid >= FIRST_CLUSTER_UID);
    const withNewline = (text: string): string => (text.endsWith("\n") || text === "" ? text : `${text}\n`);
    await writeFile(
      join(this.#etc, "passwd"),
      withNewline(passwd) + cluster.filter((u) => !hostUsers.has(u.name)).map((u) => `${u.name}:x:${u.uid}:${u.gid}::${u.home}:/bin/sh\n`).join(""),
    );
    await writeFile(
      join(this.#etc, "group"),
      withNewline(group) + cluster.filter((u) => !hostGroups.has(u.name)).map((u) => `${u.name}:x:${u.gid}:\n`).join(""),
    );
  }

  get #etc(): string {
    return join(this.#options.stateDir, "etc");
  }

  async #startPidNamespace(): Promise<void> {
    const holder = spawn(PIDNS_PROGRAM, [], { argv0: "oneos-init", stdio: ["ignore", "pipe", "pipe"] });
    this.#pidns = holder;
    const ok = await new Promise<string | true>((resolve) => {
      let errors = "";
      holder.stderr!.on("data", (c: Buffer) => (errors += c.toString()));
      createInterface({ input: holder.stdout! }).once("line", () => resolve(true));
      holder.once("error", (error) => resolve(`${PIDNS_PROGRAM}: ${error.message}`));
      holder.once("exit", (code) => resolve(`the PID namespace's holder exited with ${code}: ${errors.trim()}`));
    });
    if (ok !== true) throw new KernelError("EIO", ok);
    holder.stderr!.on("data", (c: Buffer) => this.#options.logger.warn({ pidns: c.toString().trim() }, "PID namespace"));
    // Its end ended every process of the node; the mount namespace's /proc is then of a dead one.
    holder.once("exit", (code, signal) => {
      if (this.#closing) return;
      this.#options.logger.error({ code, signal }, "the node's PID namespace ended; starting another");
      this.#rebuild(true);
    });
  }

  async #startHolder(): Promise<void> {
    await mkdir(this.#etc, { recursive: true });
    if (!existsSync(join(this.#etc, "passwd"))) await this.writeAccounts([]);
    // private: the namespace's binds never leak back to the host's mount table.
    // With a host name of its own: a UTS namespace too, named through procfs (no hostname(1) needed).
    const hostname = this.#options.hostname;
    // Its /proc is the node's PID namespace's, mounted by a process in it (procfs shows the mounter's).
    // Or the cluster /proc, with the node's procfs mounted under it first (this mount namespace's
    // alone), then the two bound onto /proc together.
    const clusterProc = this.#options.clusterProc;
    const procfs = "nsenter --pid=\"$4\" -- mount -t proc -o nosuid,nodev,noexec proc";
    const script =
      'ip link set lo up && mount --bind "$1" /home && mount --bind "$2" /etc/passwd && mount --bind "$3" /etc/group && ' +
      'if [ -n "$5" ]; then printf %s "$5" > /proc/sys/kernel/hostname; fi && ' +
      (clusterProc !== undefined
        ? `${procfs} "$6/${REAL_PROC_IN_NAMESPACE.slice("/proc/".length)}" && mount --rbind "$6" /proc && `
        : `${procfs} /proc && `) +
      "echo ready && exec sleep infinity";
    const holder = spawn(
      "unshare",
      [
        "--mount",
        "--net",
        ...(hostname !== undefined ? ["--uts"] : []),
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        join(this.mountpoint, "home"),
        join(this.#etc, "passwd"),
        join(this.#etc, "group"),
        `/proc/${this.#pidns!.pid}/ns/pid_for_children`,
        hostname ?? "",
        ...(clusterProc !== undefined ? [clusterProc] : []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#holder = holder;
    const ok = await new Promise<string | true>((resolve) => {
      let errors = "";
      holder.stderr!.on("data", (c: Buffer) => (errors += c.toString()));
      createInterface({ input: holder.stdout! }).once("line", () => resolve(true));
      holder.once("exit", (code) => resolve(`namespace holder exited with ${code}: ${errors.trim()}`));
    });
    if (ok !== true) throw new KernelError("EIO", ok);
  }

  #onDaemonExit(code: number | null, signal: string | null): void {
    if (this.#closing || this.#restarting) return;
    this.#options.logger.error({ code, signal }, "CloudFS daemon died; remounting");
    this.#rebuild(false);
  }

  /**
   * Builds the mount namespace again (its bind points at a dead mount, or its /proc at a dead PID
   * namespace) after a new daemon, or a new PID namespace, is up.
   */
  #rebuild(pidNamespace: boolean): void {
    if (this.#restarting) return;
    this.#restarting = true;
    this.#holder?.kill("SIGKILL");
    this.#holder = undefined;
    const attempt = async (): Promise<void> => {
      if (this.#closing) return;
      try {
        // Whichever ended (both may have, one during the other's rebuild) starts again.
        if (pidNamespace || this.#pidns === undefined || this.#pidns.exitCode !== null || this.#pidns.signalCode !== null) await this.#startPidNamespace();
        if (!pidNamespace || this.#daemon === undefined || this.#daemon.exitCode !== null || this.#daemon.signalCode !== null) await this.#startDaemon();
        await this.#startHolder();
        this.#restarting = false;
      } catch (error) {
        this.#options.logger.error({ err: (error as Error).message }, "the node's namespaces were not rebuilt");
        // Never leave a half-started pair behind (its exit is ignored while #restarting).
        if (pidNamespace) this.#pidns?.kill("SIGKILL");
        else this.#daemon?.kill("SIGKILL");
        this.#holder?.kill("SIGKILL");
        this.#restartDelay = Math.min(this.#restartDelay * 2, 60_000);
        this.#restartTimer = setTimeout(() => void attempt(), this.#restartDelay);
      }
    };
    this.#restartTimer = setTimeout(() => void attempt(), this.#restartDelay);
  }

  /** Unmounts (the daemon flushes on SIGTERM) and ends the namespace. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    this.#holder?.kill("SIGKILL");
    // Ends every process still in the node's PID namespace.
    this.#pidns?.kill("SIGTERM");
    const daemon = this.#daemon;
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((r) => daemon.once("exit", r));
      daemon.kill("SIGTERM");
      const timer = setTimeout(() => daemon.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
  }
}
