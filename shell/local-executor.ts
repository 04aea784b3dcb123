import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants as osConstants } from "node:os";
import { access, constants as fsConstants, open, readdir, stat, type FileHandle } from "node:fs/promises";
import { createReadStream, createWriteStream } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { PassThrough, Readable, Writable, pipeline } from "node:stream";
import {
  LaunchError,
  type Executor,
  type ExitStatus,
  type InputSpec,
  type LaunchRequest,
  type OutputSpec,
  type PipeHandle,
  type ProcessHandle,
  type ShellFs,
} from "./executor.js";

/**
 * Bytes a pipe between two local stages holds before the writer is paused; about what a Linux pipe
 * holds (64 KiB), so back-pressure behaves as with `sh`.
 */
const PIPE_HIGH_WATER_MARK = 64 * 1024;

export interface LocalExecutorOptions {
  /** Node names accepted by `@node` placement; `nodes()` returns them. Default `["local"]`. */
  readonly nodes?: readonly string[];
  /** Labels per node, for `@key=value` placement. */
  readonly labels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * Runs commands on this machine with child_process: the executor behind the interpreter's unit tests and
 * `oneos shell --local`. Placement is only checked (every "node" is this machine). Each child gets its
 * own process group (`detached`), so a signal reaches everything it started.
 *
 * Shell-side streams given as `writable` are never ended (they are the terminal or a capture shared by
 * several commands); `readable` stdin streams are unpiped when the command exits.
 */
export class LocalExecutor implements Executor {
  readonly fs: ShellFs = localFs;
  readonly #nodes: readonly string[];
  readonly #labels: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly #pipes = new Map<string, PassThrough>();
  readonly #children = new Set<ChildProcess>();
  #nextPipe = 1;

  constructor(options: LocalExecutorOptions = {}) {
    this.#nodes = options.nodes ?? ["local"];
    this.#labels = options.labels ?? {};
  }

  async nodes(): Promise<string[]> {
    return [...this.#nodes];
  }

  createPipe(): PipeHandle {
    const id = `p${this.#nextPipe++}`;
    this.#pipes.set(id, new PassThrough({ highWaterMark: PIPE_HIGH_WATER_MARK }));
    return { id };
  }

  pipeWriter(pipe: PipeHandle): Writable {
    return this.#pipe(pipe);
  }

  pipeReader(pipe: PipeHandle): Readable {
    return this.#pipe(pipe);
  }

  async launch(request: LaunchRequest): Promise<ProcessHandle> {
    const node = this.#place(request);
    const file = await resolveCommand(request.argv, request.env, request.cwd);
    const fds: FileHandle[] = [];
    try {
      const stdin = await this.#inputFd(request.stdin, fds);
      const stdout = await this.#outputFd(request.stdout, fds);
      const stderr = request.stderr.kind === "stdout" ? stdout : await this.#outputFd(request.stderr, fds);
      const child = spawn(file, request.argv.slice(1), {
        argv0: request.argv[0] ?? file,
        cwd: request.cwd,
        env: { ...request.env },
        stdio: [stdin, stdout, stderr] as StdioOptions,
        detached: true,
      });
      const spawned = await new Promise<Error | null>((done) => {
        child.once("spawn", () => done(null));
        child.once("error", (err) => done(err));
      });
      if (spawned !== null) throw new LaunchError("EIO", `${request.argv[0]}: ${spawned.message}`, { cause: spawned });
      this.#children.add(child);
      return this.#follow(child, node, request);
    } finally {
      // The child holds its own copies of file descriptors.
      await Promise.all(fds.map((fd) => fd.close()));
    }
  }

  /** Kills every child still running (tests call this in afterEach). */
  close(): void {
    for (const child of this.#children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    this.#children.clear();
  }

  #pipe(pipe: PipeHandle): PassThrough {
    const stream = this.#pipes.get(pipe.id);
    if (stream === undefined) throw new Error(`unknown pipe ${pipe.id}`);
    return stream;
  }

  #place(request: LaunchRequest): string {
    const placement = request.placement;
    switch (placement.kind) {
      case "auto":
        return this.#nodes[0] ?? "local";
      case "node":
        if (!this.#nodes.includes(placement.node)) {
          throw new LaunchError(
            "ENONODE",
            `oneos: unknown node '${placement.node}' (known: ${this.#nodes.join(", ")})`,
          );
        }
        return placement.node;
      case "label": {
        const node = this.#nodes.find((n) => this.#labels[n]?.[placement.key] === placement.value);
        if (node === undefined) {
          throw new LaunchError("EPLACE", `oneos: no node has label ${placement.key}=${placement.value}`);
        }
        return node;
      }
    }
  }

  async #inputFd(spec: InputSpec, fds: FileHandle[]): Promise<"pipe" | "ignore" | number> {
    switch (spec.kind) {
      case "null":
        return "ignore";
      case "file": {
        const fd = await openOrThrow(spec.path, "r");
        fds.push(fd);
        return fd.fd;
      }
      case "pipe":
      case "readable":
        return "pipe";
    }
  }

  async #outputFd(spec: OutputSpec, fds: FileHandle[]): Promise<"pipe" | "ignore" | number> {
    switch (spec.kind) {
      case "null":
        return "ignore";
      case "file": {
        const fd = await openOrThrow(spec.path, spec.append ? "a" : "w");
        fds.push(fd);
        return fd.fd;
      }
      case "pipe":
      case "writable":
      case "stdout":
        return "pipe";
    }
  }

  #follow(child: ChildProcess, node: string, request: LaunchRequest): ProcessHandle {
    const pid = child.pid ?? -1;
    const outputsDone: Promise<void>[] = [];
    const stdoutTarget = request.stdout;
    // stderr "stdout" with a file target shares the fd; with a stream target both feed it.
    const stderrTarget = request.stderr.kind === "stdout" ? stdoutTarget : request.stderr;
    const sharedStream = request.stderr.kind === "stdout" && child.stderr !== null && child.stdout !== null;
    if (child.stdout !== null) outputsDone.push(this.#connectOutput(child.stdout, stdoutTarget, sharedStream ? 2 : 1, pid));
    if (child.stderr !== null && request.stderr.kind !== "stdout") {
      outputsDone.push(this.#connectOutput(child.stderr, stderrTarget, 1, pid));
    } else if (child.stderr !== null) {
      outputsDone.push(this.#connectOutput(child.stderr, stderrTarget, 2, pid));
    }
    let detachInput = (): void => {};
    if (child.stdin !== null) detachInput = this.#connectInput(child.stdin, request.stdin);

    const exited = new Promise<ExitStatus>((done) => {
      child.once("exit", (code, signal) => {
        this.#children.delete(child);
        detachInput();
        if (signal !== null) {
          const number = osConstants.signals[signal];
          done({ status: 128 + number, signal });
        } else {
          done({ status: code ?? 1 });
        }
      });
    });
    const finished = Promise.all([exited, ...outputsDone]).then(([status]) => status);
    return {
      pid,
      node,
      wait: () => finished,
      signal: async (signal: string) => signalGroup(pid, signal),
    };
  }

  /** Connects a child's output; `writers` is how many outputs share a pipe (2 for `2>&1`). */
  #connectOutput(source: Readable, spec: OutputSpec, writers: number, pid: number): Promise<void> {
    return new Promise<void>((done) => {
      source.once("close", () => done());
      switch (spec.kind) {
        case "pipe": {
          const target = this.#pipe(spec.pipe);
          if (target.destroyed) {
            // The reader was gone before this writer started.
            signalGroup(pid, "SIGPIPE");
            source.destroy();
            return;
          }
          source.pipe(target, { end: false });
          source.once("end", () => (writers === 1 ? target.end() : endShared(target)));
          target.once("close", () => {
            if (source.readableEnded) return;
            // The reader is gone. Node's stdio pipes are socketpairs, where a write after the reader
            // closed fails with ECONNRESET; a real pipe raises SIGPIPE, so deliver that first.
            signalGroup(pid, "SIGPIPE");
            source.destroy();
          });
          return;
        }
        case "writable":
          source.pipe(spec.stream, { end: false });
          source.once("end", () => done());
          return;
        case "null":
        case "file":
        case "stdout":
          source.resume();
          return;
      }
    });
  }

  #connectInput(sink: Writable, spec: InputSpec): () => void {
    // A reader that exits before reading everything closes its stdin: that is EPIPE, not an error.
    sink.on("error", () => {});
    switch (spec.kind) {
      case "pipe": {
        const source = this.#pipe(spec.pipe);
        // pipeline() destroys the pipe when the reader goes away, so the writer gets SIGPIPE.
        pipeline(source, sink, () => {});
        // A reader that exits has closed its end of the pipe, read or not.
        return () => source.destroy();
      }
      case "readable": {
        spec.stream.pipe(sink);
        return () => {
          spec.stream.unpipe(sink);
        };
      }
      case "null":
      case "file":
        return () => {};
    }
  }
}

function signalGroup(pid: number, signal: string): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone: like kill(1) on an exited process, nothing to do.
  }
}

/** Ends a pipe fed by two outputs of one process once both ended. */
const sharedEnds = new WeakMap<Writable, number>();
function endShared(target: Writable): void {
  const count = (sharedEnds.get(target) ?? 0) + 1;
  sharedEnds.set(target, count);
  if (count === 2) target.end();
}

async function openOrThrow(path: string, flags: string): Promise<FileHandle> {
  try {
    return await open(path, flags, 0o666);
  } catch (err: unknown) {
    const code = errorCode(err);
    const reason = code === "ENOENT" ? "No such file or directory" : code === "EACCES" ? "Permission denied" : code;
    throw new LaunchError(code === "EACCES" ? "EACCES" : "ENOENT", `oneos: ${path}: ${reason}`, { cause: err });
  }
}

/** Finds the program to run as `sh` does: a name with a slash as is, else through PATH. */
export async function resolveCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  cwd: string,
): Promise<string> {
  const name = argv[0];
  if (name === undefined || name === "") throw new LaunchError("ENOCMD", "oneos: : command not found");
  if (name.includes("/")) {
    const path = isAbsolute(name) ? name : resolve(cwd, name);
    const info = await stat(path).catch(() => null);
    if (info === null) throw new LaunchError("ENOENT", `oneos: ${name}: No such file or directory`);
    if (info.isDirectory()) throw new LaunchError("EACCES", `oneos: ${name}: Is a directory`);
    if (!(await isExecutable(path))) throw new LaunchError("EACCES", `oneos: ${name}: Permission denied`);
    return path;
  }
  for (const dir of (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(delimiter)) {
    const candidate = join(dir === "" ? cwd : resolve(cwd, dir), name);
    const info = await stat(candidate).catch(() => null);
    if (info !== null && info.isFile() && (await isExecutable(candidate))) return candidate;
  }
  throw new LaunchError("ENOCMD", `oneos: ${name}: command not found`);
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, fsConstants.X_OK).then(
    () => true,
    () => false,
  );
}

function errorCode(err: unknown): string {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") return err.code;
  return "EIO";
}

/** `ShellFs` over node:fs. */
export const localFs: ShellFs = {
  async stat(path) {
    const info = await stat(path).catch(() => null);
    return info === null ? null : { isDirectory: info.isDirectory() };
  },
  readdir(path) {
    return readdir(path);
  },
  async openWrite(path, options) {
    const fd = await open(path, options.append ? "a" : "w", 0o666);
    return createWriteStream("", { fd });
  },
  async openRead(path) {
    const fd = await open(path, "r");
    return createReadStream("", { fd });
  },
};
