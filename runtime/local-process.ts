import { spawnNative, type NativeChild } from "./native-spawn.js";
import { OutputTail } from "./output-tail.js";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import type { Writable } from "node:stream";
import {
  exitStatusOf,
  KernelError,
  StreamReader,
  StreamWriter,
  type SpawnRequest,
  type StdioSpec,
  type StreamTransport,
} from "../pseudokernel/index.js";
import { lookupCommand } from "./command-lookup.js";
import { closeFd, osPipe, pipeReader, pipeWriter } from "./os-pipe.js";
import { openAs, ROOT_IDENTITY, type FsIdentity } from "./as-user.js";
import { PIDNS_PROGRAM } from "./native-addon.js";

/** Cluster PIDs: the next one, and the block this runtime hands them out from now (see PidAllocator). */
export interface PidSource {
  allocate(): Promise<number>;
  block(): readonly [from: number, to: number];
}

/** How paths look to this node's processes, and the mount namespace they run in (if any). */
export interface ProcessView {
  /** `/proc/PID/ns/mnt` to enter, or undefined to run in the runtime's own namespace. */
  readonly namespace?: string | undefined;
  /** `/proc/PID/ns/net` to enter as well (the node's own loopback), or undefined. */
  readonly netNamespace?: string | undefined;
  /** `/proc/PID/ns/uts` to enter as well (the node's own host name), or undefined. */
  readonly utsNamespace?: string | undefined;
  /** The node's PID namespace (`/proc/PID/ns/pid_for_children`), in which a process gets its cluster PID; or undefined. */
  readonly pidNamespace?: string | undefined;
  /** A path as processes see it → the same file in the runtime's view. */
  toLocal(path: string): string;
  /** Where CloudFS is mounted in the runtime's view: a user's file checks start there (see `openAs`). */
  readonly mount?: string | undefined;
}

/** No namespace: processes see what the runtime sees. */
export const HOST_VIEW: ProcessView = { toLocal: (path) => path };

/** How a local process ended. */
export interface LocalExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** `$?` as bash reports it. */
  readonly status: number;
}

/**
 * One child process of this runtime with its stdio wired to streams and files.
 *
 * The child gets its own process group (so a signal reaches everything it started, as a job's
 * process group does in a shell). Its stdout/stderr are piped into stream writers: when a reader stops
 * reading, the writer holds back credit and the child blocks in write(2); when a reader goes away, the
 * read end of the child's pipe is closed and the child gets SIGPIPE.
 */
export class LocalProcess {
  readonly exited: Promise<LocalExit>;
  /** The last of what it wrote to streams (stdout and stderr as they go out; not redirections to files). */
  readonly tail: OutputTail;
  /** Its cluster PID: getpid() in the node's PID namespace, where there is one. */
  readonly pid: number;
  readonly #pid: number;
  #streams: (StreamReader | StreamWriter)[];

  private constructor(pid: number, child: NativeChild, streams: (StreamReader | StreamWriter)[], tail: OutputTail) {
    this.pid = pid;
    this.#pid = child.pid;
    this.#streams = streams;
    this.tail = tail;
    this.exited = child.exited.then(({ code, signal }) => ({ code, signal, status: exitStatusOf(code, signal) }));
  }

  get hostPid(): number {
    return this.#pid;
  }

  /** To its process group (everything it started), or with `only` to it alone (kill(2) of its PID). */
  signal(signal: NodeJS.Signals, only = false): void {
    try {
      process.kill(only ? this.hostPid : -this.hostPid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") throw new KernelError("ESRCH", "no such process");
      throw error;
    }
  }

  resize(): void {
    throw new KernelError("EINVAL", "not a terminal");
  }

  /** Tears down every stream of the process (its node is leaving). */
  abortStreams(reason: string): void {
    for (const s of this.#streams) s.destroy(new KernelError("ECONNRESET", reason));
  }

  /** `pids` hands out cluster PIDs; the process gets the first one free in the node's PID namespace. */
  static async start(
    request: SpawnRequest,
    transport: StreamTransport,
    pids: PidSource,
    view: ProcessView = HOST_VIEW,
    who: FsIdentity = ROOT_IDENTITY,
  ): Promise<LocalProcess> {
    const target = await resolveTarget(request, view, who);
    const command = target.command;

    const files: number[] = [];
    /** Descriptors that only the child keeps: closed here once it has them. */
    const childEnds: number[] = [];
    const streams: (StreamReader | StreamWriter)[] = [];
    const wiring: (() => void)[] = [];
    const tail = new OutputTail();
    try {
      const [in0, out1, err2] = request.stdio;
      const fd0 = await this.#prepare(in0, 0, files, view, who);
      const fd1 = await this.#prepare(out1, 1, files, view, who);
      const fds: (number | "ignore")[] = [fd0, fd1, "ignore"];
      if (in0.kind === "stream") {
        const [r, w] = osPipe();
        childEnds.push(r);
        fds[0] = r;
        const reader = new StreamReader(transport, in0.id);
        // Until it is wired below (or destroyed on failure), nothing else listens for 'error': a reset
        // arriving meanwhile, or the destroy in the catch, would otherwise be uncaught and end the runtime.
        streams.push(reader.on("error", () => undefined));
        wiring.push(() => feedStdin(reader, pipeWriter(w)));
      }
      if (out1.kind === "stream") {
        const [r, w] = osPipe();
        childEnds.push(w);
        fds[1] = w;
        const writer = new StreamWriter(transport, out1.id);
        streams.push(writer.on("error", () => undefined));
        wiring.push(() => drainOutput(r, writer, tail));
      }
      if (err2.kind === "stdout") {
        fds[2] = fds[1]!; // 2>&1: the same pipe or file, as dup2 would make it
      } else if (err2.kind === "stream") {
        const [r, w] = osPipe();
        childEnds.push(w);
        fds[2] = w;
        const writer = new StreamWriter(transport, err2.id);
        streams.push(writer.on("error", () => undefined));
        wiring.push(() => drainOutput(r, writer, tail));
      } else {
        fds[2] = await this.#prepare(err2, 2, files, view, who);
      }

      let pid = await pids.allocate();
      const [ownFrom, ownTo] = pids.block();
      let child: NativeChild;
      for (let attempt = 1; ; attempt++) {
        try {
          child = await spawnNative({
            file: target.path,
            argv: target.argv,
            env: target.env,
            cwd: target.cwd,
            umask: request.umask,
            fds: [fds[0] === "ignore" ? -1 : fds[0]!, fds[1] === "ignore" ? -1 : fds[1]!, fds[2] === "ignore" ? -1 : fds[2]!],
            // In the node's PID namespace, a kill(2) of a process on another node is relayed there.
            ...(target.namespace !== undefined ? { namespace: { ...target.namespace, pid, relayKills: target.namespace.pidns !== null, ownFrom, ownTo } } : {}),
          });
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // Taken in the node's PID namespace by a process forked there (only once its PIDs wrapped round): the next.
          if (code === "EEXIST" && attempt < 3) {
            pid = await pids.allocate();
            continue;
          }
          throw new KernelError(code === "EACCES" ? "EACCES" : "ENOCMD", `${command}: ${(error as Error).message}`);
        }
      }
      for (const wire of wiring) wire();
      return new LocalProcess(pid, child, streams, tail);
    } catch (error) {
      for (const s of streams) s.destroy(error as Error);
      throw error;
    } finally {
      // The child has its own copies of these descriptors now.
      for (const fd of childEnds) closeFd(fd);
      for (const fd of files) closeFd(fd);
    }
  }

  /** A redirection's file, opened as the process's user would open it (their permissions, their file). */
  static async #prepare(spec: StdioSpec, fd: number, files: number[], view: ProcessView, who: FsIdentity): Promise<number | "ignore"> {
    if (spec.kind !== "file") return "ignore";
    try {
      const opened = await openAs(view.toLocal(spec.path), spec.mode, who, 0o666, view.mount);
      files.push(opened);
      return opened;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const what =
        code === "ENOENT" ? "No such file or directory" : code === "EACCES" ? "Permission denied" : code === "EISDIR" ? "Is a directory" : String(code);
      throw new KernelError(code === "EACCES" ? "EACCES" : "ENOENT", `${spec.path}: ${what} (fd ${fd})`);
    }
  }
}

/** Stream → child's stdin. A child that stops reading makes the stream hold back credit. */
function feedStdin(reader: StreamReader, stdin: Writable): void {
  reader.pipe(stdin);
  // The child closed its stdin (or exited): the upstream writer must get EPIPE, as with a local pipe.
  stdin.on("error", () => reader.destroy());
  stdin.on("close", () => {
    if (!reader.readableEnded) reader.destroy();
  });
  // The writer aborted or vanished: the child sees end of input.
  reader.on("error", () => stdin.destroy());
}

/**
 * Child's stdout → stream (and its tail). The reader gone ⇒ we close our end of the pipe ⇒ the child
 * gets SIGPIPE.
 */
function drainOutput(fd: number, writer: StreamWriter, tail: OutputTail): void {
  const source = pipeReader(fd, (chunk) => {
    tail.push(chunk);
    if (writer.write(chunk)) return true;
    writer.once("drain", () => source.resume());
    return false;
  });
  source.on("end", () => writer.end());
  source.on("error", (error) => writer.destroy(error));
  writer.on("error", () => source.destroy());
}

/** What to exec for a spawn request: resolved and checked, in the processes' view. */
export interface LaunchTarget {
  /** argv[0] as the user typed it. */
  readonly command: string;
  /** The program's absolute path, as processes see it. */
  readonly path: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  /** The node's namespaces to run in, with the user's ids (absent: the runtime's own, as root). */
  readonly namespace?: LaunchNamespace;
}

/** The namespaces a process of the node enters and the ids it takes (see spawn.c). */
export interface LaunchNamespace {
  readonly mnt: string;
  readonly net: string | null;
  readonly uts: string | null;
  readonly pidns: string | null;
  readonly uid: number;
  readonly gid: number;
}

/** Checks the cwd and finds the program (ENOENT, ENOCMD, EACCES as a shell reports them). */
export async function resolveTarget(request: SpawnRequest, view: ProcessView, who: FsIdentity = ROOT_IDENTITY): Promise<LaunchTarget> {
  const command = request.argv[0]!;
  const searchPath = request.env["PATH"] ?? process.env["PATH"] ?? "";
  const [cwdStat, path] = await Promise.all([
    stat(view.toLocal(request.cwd)).catch(() => null),
    lookupCommand(command, searchPath, request.cwd, (p) => view.toLocal(p), {
      ...who,
      reach: async (path) => closeFd(await openAs(path, "path", who, 0, view.mount)),
    }).catch((e: unknown) => e as Error),
  ]);
  if (cwdStat === null || !cwdStat.isDirectory()) {
    throw new KernelError("ENOENT", `cd: ${request.cwd}: No such file or directory`);
  }
  if (path instanceof Error) throw path;
  // A program that runs others finds them as the runtime would.
  const env = request.env["PATH"] !== undefined ? { ...request.env } : { ...request.env, PATH: searchPath };
  const target = { command, path, argv: request.argv, cwd: request.cwd, env };
  if (view.namespace === undefined) return target;
  return {
    ...target,
    namespace: { mnt: view.namespace, net: view.netNamespace ?? null, uts: view.utsNamespace ?? null, pidns: view.pidNamespace ?? null, uid: who.uid, gid: who.gid },
  };
}

/**
 * nsenter by the runtime's own PATH, found once: run as root with the user's environment, it must not
 * be looked up along the user's PATH (theirs would run as root).
 */
const NSENTER = ((): string => {
  const dirs = (process.env["PATH"] ?? "").split(":").filter((d) => d.startsWith("/"));
  return [...dirs, "/usr/bin", "/bin"].map((d) => `${d}/nsenter`).find((p) => existsSync(p)) ?? "/usr/bin/nsenter";
})();

/**
 * The same launch through programs (for node-pty, which can only exec one): `oneos-pidns enter` starts
 * it as `pid` in the node's PID namespace and waits for it (as `nsenter --pid` would, with a PID of
 * the namespace's choosing); `nsenter` enters the other namespaces, sets the cwd there and execs the
 * program in place (same pid, same exit status).
 */
export function viaNsenter(
  target: LaunchTarget,
  pid: number,
  [ownFrom, ownTo]: readonly [number, number],
): { file: string; args: string[]; cwd: string; env: Record<string, string> } {
  const ns = target.namespace;
  if (ns === undefined) return { file: target.path, args: target.argv.slice(1), cwd: target.cwd, env: target.env };
  const nsenter = [
    NSENTER,
    `--mount=${ns.mnt}`,
    ...(ns.net !== null ? [`--net=${ns.net}`] : []),
    ...(ns.uts !== null ? [`--uts=${ns.uts}`] : []),
    `--wdns=${target.cwd}`,
    // The user's own uid and gid (nsenter drops supplementary groups when it sets the gid).
    ...(ns.uid !== 0 || ns.gid !== 0 ? [`--setgid=${ns.gid}`, `--setuid=${ns.uid}`] : []),
    "--",
    target.path,
    ...target.argv.slice(1),
  ];
  const args = ns.pidns !== null ? ["enter", ns.pidns, String(pid), String(ownFrom), String(ownTo), "--", ...nsenter] : nsenter.slice(1);
  return { file: ns.pidns !== null ? PIDNS_PROGRAM : NSENTER, args, cwd: "/", env: target.env };
}

