import type { Readable, Writable } from "node:stream";
import type { Subscription } from "@nats-io/transport-node";
import {
  decode,
  encode,
  guarded,
  KernelError,
  newStreamId,
  notifyInbox,
  NodeTable,
  parseExitEvent,
  type ExitEvent,
  type KernelClient,
  type NodeView,
  type SpawnRequest,
  type StdioSpec,
  type StreamReader,
} from "../pseudokernel/index.js";
import { openSchedulerBucket, Placer, SchedulerSettings, type PlacementSpec, type PlacementTicket } from "../scheduler/index.js";
import { placementProblem, placementSpec } from "./placement.js";
import {
  LaunchError,
  type ExitStatus,
  type Executor,
  type InputSpec,
  type LaunchRequest,
  type OutputSpec,
  type PipeHandle,
  type ProcessHandle,
  type ShellFs,
} from "./executor.js";
import { localFs } from "./local-executor.js";

/** A node that refuses a spawn at admission (another shell took its resources) is replaced this often. */
const ADMISSION_RETRIES = 2;
/** While waiting for an exit event, the process table is checked this often (the event may be lost). */
const EXIT_POLL_MS = 2000;
/** A node must look down this long before its process is given up as lost, looked at this often. */
const CONFIRM_DOWN_MS = 2500;
const DOWN_RECHECK_MS = 500;

export interface ClusterExecutorOptions {
  /** Cluster PID of the shell, as the parent of what it launches. */
  readonly ppid?: number;
  /** The file system the shell itself sees (cd, globbing, builtin redirections). */
  readonly fs?: ShellFs;
  /** The nodes as the caller just saw them (`kernel.nodes()`): seeds the table without asking again. */
  readonly nodes?: readonly NodeView[];
}

/**
 * Runs the shell's simple commands on cluster nodes: places each one, asks the node's runtime to spawn
 * it, and connects its stdio. A pipe between two remote commands is one stream between their runtimes;
 * the shell is in the data path only for what it consumes or produces itself.
 */
export class ClusterExecutor implements Executor {
  readonly fs: ShellFs;
  #kernel: KernelClient;
  #options: ClusterExecutorOptions;
  #table: NodeTable;
  /** What this shell placed that heartbeats do not show yet, and where each pipe's first end went. */
  #placer = new Placer();
  /** The cluster's placement strategy (spread until the scheduler bucket says otherwise). */
  #settings: SchedulerSettings | undefined;

  private constructor(kernel: KernelClient, table: NodeTable, options: ClusterExecutorOptions) {
    this.#kernel = kernel;
    this.#table = table;
    this.#options = options;
    this.fs = options.fs ?? localFs;
  }

  static async create(kernel: KernelClient, options: ClusterExecutorOptions = {}): Promise<ClusterExecutor> {
    const table = NodeTable.watch(kernel.buckets.nodes, kernel.nc);
    const executor = new ClusterExecutor(kernel, table, options);
    executor.#settings = await openSchedulerBucket(kernel.nc).then((kv) => SchedulerSettings.follow(kv), () => undefined);
    // Heartbeats (each second) and the bucket fill the table asynchronously; a runtime's view fills it now.
    const seeded = options.nodes ?? (await kernel.nodes().catch(() => []));
    const now = Date.now();
    for (const node of seeded) table.apply(node, node.effective === "ready" ? now : Math.min(now, node.heartbeat));
    const deadline = Date.now() + 3000;
    while (table.records.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return executor;
  }

  close(): void {
    this.#table.stop();
    this.#settings?.stop();
  }

  createPipe(): PipeHandle {
    return { id: newStreamId() };
  }

  pipeWriter(pipe: PipeHandle): Writable {
    return this.#kernel.writer(pipe.id);
  }

  pipeReader(pipe: PipeHandle): Readable {
    return this.#kernel.reader(pipe.id);
  }

  async nodes(): Promise<string[]> {
    return this.#table
      .view(Date.now())
      .filter((r) => r.effective === "ready")
      .map((r) => r.name);
  }

  #place(spec: PlacementSpec, pipes: readonly string[], exclude?: ReadonlySet<string>): string {
    try {
      return this.#placer.place(spec, this.#table.view(Date.now()), {
        strategy: this.#settings?.strategy ?? "spread",
        lastSeen: (node) => this.#table.lastSeen.get(node) ?? 0,
        pipes,
        ...(exclude !== undefined ? { exclude } : {}),
      });
    } catch (error) {
      if (error instanceof KernelError) {
        throw new LaunchError(error.code === "ENONODE" ? "ENONODE" : "EPLACE", error.message, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Sends the spawn to `node`; a node that refuses it at admission (another shell took its resources a
   * moment ago) is left out and the command placed again, at most `ADMISSION_RETRIES` times.
   */
  async #spawnPlaced(
    node: string,
    spec: PlacementSpec,
    spawn: SpawnRequest,
    pipes: readonly string[],
  ): Promise<{ pid: number; node: string; ticket: PlacementTicket }> {
    const refused = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const ticket = this.#placer.reserve(node, spec.resources, pipes);
      try {
        const reply = await this.#kernel.request(node, spawn);
        if (reply.type !== "spawned") throw new KernelError("EIO", `unexpected reply ${reply.type}`);
        ticket.confirm(Date.now());
        return { pid: reply.pid, node, ticket };
      } catch (error) {
        ticket.end();
        if (!(error instanceof KernelError) || error.code !== "EPLACE" || attempt >= ADMISSION_RETRIES) throw error;
        refused.add(node);
        node = this.#place(spec, pipes, refused);
      }
    }
  }

  async launch(request: LaunchRequest): Promise<ProcessHandle> {
    const problem = placementProblem(request.placement);
    if (problem !== undefined) throw new LaunchError("EPLACE", problem);
    const spec = placementSpec(request.placement);
    const pipes = [request.stdin, request.stdout].flatMap((s) => (s.kind === "pipe" ? [s.pipe.id] : []));
    let node = this.#place(spec, pipes);
    const cleanups: (() => void)[] = [];
    const outputs: Promise<string | undefined>[] = [];
    const tty = request.tty;
    // On a terminal: keystrokes in one stream, the PTY's output back in another (stderr rides on it).
    const stdinSpec = tty !== undefined ? this.#input({ kind: "readable", stream: tty.input }, cleanups, { keepOpen: true }) : this.#input(request.stdin, cleanups);
    const stdoutSpec = tty !== undefined ? this.#output({ kind: "writable", stream: tty.output }, outputs) : this.#output(request.stdout, outputs);
    const stderrSpec: StdioSpec =
      tty !== undefined ? { kind: "null" } : request.stderr.kind === "stdout" ? { kind: "stdout" } : this.#output(request.stderr, outputs);

    // Window-size changes are followed from before the spawn: one may come while it is in flight.
    const resize: { latest?: [number, number]; send?: (cols: number, rows: number) => void } = {};
    if (tty !== undefined) {
      cleanups.push(
        tty.onResize((cols, rows) => {
          if (resize.send !== undefined) resize.send(cols, rows);
          else resize.latest = [cols, rows];
        }),
      );
    }
    const notify = notifyInbox();
    let resolveExit: (event: ExitEvent) => void = () => undefined;
    const exitEvent = new Promise<ExitEvent>((resolve) => (resolveExit = resolve));
    const sub: Subscription = this.#kernel.nc.subscribe(notify, {
      max: 1,
      // Anything but an exit event is dropped.
      callback: guarded((msg) => resolveExit(parseExitEvent(decode(msg.data)))),
    });
    const spawn: SpawnRequest = {
      type: "spawn",
      argv: request.argv,
      env: request.env,
      cwd: request.cwd,
      umask: request.umask,
      ppid: this.#options.ppid ?? 0,
      stdio: [stdinSpec, stdoutSpec, stderrSpec],
      notify,
      ...(spec.resources.cpu > 0 || spec.resources.mem > 0 ? { resources: spec.resources } : {}),
      ...(tty !== undefined ? { tty: { term: tty.term, cols: tty.cols, rows: tty.rows } } : {}),
    };
    let pid: number;
    let ticket: PlacementTicket;
    try {
      ({ pid, node, ticket } = await this.#spawnPlaced(node, spec, spawn, pipes));
    } catch (error) {
      sub.unsubscribe();
      for (const cleanup of cleanups) cleanup();
      throw toLaunchError(error, request.argv[0] ?? "");
    }
    const kernel = this.#kernel;
    if (tty !== undefined) {
      resize.send = (cols, rows) => {
        void kernel.request(node, { type: "resize", pid, cols, rows }).catch(() => undefined);
      };
      // A resize while the spawn request was in flight was kept: the program must see it.
      if (resize.latest !== undefined) resize.send(...resize.latest);
    }
    const exited = this.#followExit(pid, node, exitEvent).finally(() => {
      sub.unsubscribe();
      ticket.end();
    });
    const finished = (async (): Promise<ExitStatus> => {
      const status = await exited;
      // The process is gone: nothing more will read what the shell was feeding it.
      for (const cleanup of cleanups) cleanup();
      const problems = (await Promise.all(outputs)).filter((p): p is string => p !== undefined);
      if (status.message === undefined && problems.length > 0 && status.status !== 0) {
        return { ...status, message: problems[0]! };
      }
      return status;
    })();
    return {
      pid,
      node,
      wait: () => finished,
      async signal(signal: string) {
        await kernel.request(node, { type: "signal", pid, signal });
      },
      ...(tty !== undefined
        ? {
            async detach() {
              await kernel.request(node, { type: "detach", pid });
            },
          }
        : {}),
    };
  }

  /** Resolves with the exit status from the runtime's event, or from the process table if it was lost. */
  async #followExit(pid: number, node: string, event: Promise<ExitEvent>): Promise<ExitStatus> {
    let downSince: number | undefined;
    for (;;) {
      const wait = downSince === undefined ? EXIT_POLL_MS : DOWN_RECHECK_MS;
      const winner = await Promise.race([event, new Promise<null>((r) => setTimeout(() => r(null), wait))]);
      if (winner !== null) return winner.signal !== undefined ? { status: winner.status, signal: winner.signal } : { status: winner.status };
      // The node's liveness first: it is known from heartbeats even while JetStream elects leaders.
      const now = Date.now();
      if (this.#table.state(node, now) === "down") {
        // One look is not enough: a node marked down on a peer's stale view (two busy cores during a
        // JetStream election) heartbeats again within a second, its process still running.
        downSince ??= now;
        if (now - downSince < CONFIRM_DOWN_MS) continue;
        const final = await Promise.race([event, new Promise<null>((r) => setTimeout(() => r(null), 200))]);
        if (final !== null) continue; // the exit event raced the loss: take it at the top of the loop
        return { status: 255, message: `process ${pid} lost: node ${node} is down` };
      }
      downSince = undefined;
      const record = await this.#kernel.process(pid).catch(() => null);
      if (record !== null && (record.state === "exited" || record.state === "killed") && record.status !== undefined) {
        return record.signal !== undefined ? { status: record.status, signal: record.signal } : { status: record.status };
      }
      if (record?.state === "lost") {
        return { status: 255, message: `process ${pid} lost: node ${node} is down` };
      }
    }
  }

  /**
   * `keepOpen`: the readable outlives the process (a job's keyboard input, reused by `fg`): it is
   * only unpiped at the end, never ended by the process's exit.
   */
  #input(spec: InputSpec, cleanups: (() => void)[], options: { keepOpen?: boolean } = {}): StdioSpec {
    switch (spec.kind) {
      case "null":
        return { kind: "null" };
      case "file":
        return { kind: "file", path: spec.path, mode: "r" };
      case "pipe":
        return { kind: "stream", id: spec.pipe.id };
      case "readable": {
        const id = newStreamId();
        const writer = this.#kernel.writer(id);
        writer.on("error", () => spec.stream.unpipe(writer));
        if (spec.stream.readableEnded) {
          writer.end();
        } else {
          spec.stream.pipe(writer, { end: options.keepOpen !== true });
        }
        cleanups.push(() => {
          spec.stream.unpipe(writer);
          if (!writer.writableEnded) writer.destroy();
        });
        return { kind: "stream", id };
      }
    }
  }

  #output(spec: OutputSpec, outputs: Promise<string | undefined>[]): StdioSpec {
    switch (spec.kind) {
      case "null":
        return { kind: "null" };
      case "file":
        return { kind: "file", path: spec.path, mode: spec.append ? "a" : "w" };
      case "pipe":
        return { kind: "stream", id: spec.pipe.id };
      case "stdout":
        return { kind: "null" }; // only meaningful for stderr, handled by the caller
      case "writable": {
        const id = newStreamId();
        const reader = this.#kernel.reader(id);
        // The reader ends with the writer's EOF, or fails when the writer's node is lost.
        outputs.push(deliver(reader, spec.stream));
        return { kind: "stream", id };
      }
    }
  }
}

/** Copies a stream into a shell-side Writable (never ending it); resolves with an error text or undefined. */
function deliver(reader: StreamReader, sink: Writable): Promise<string | undefined> {
  return new Promise((resolve) => {
    // A terminal or capture that goes away stops the stream: the process gets SIGPIPE.
    const sinkClosed = (): void => {
      if (!reader.readableEnded) reader.destroy();
    };
    const settle = (problem: string | undefined): void => {
      sink.off("close", sinkClosed);
      resolve(problem);
    };
    reader.pipe(sink, { end: false });
    reader.once("end", () => settle(undefined));
    reader.once("error", (error) => {
      reader.unpipe(sink);
      settle(error.message);
    });
    sink.once("close", sinkClosed);
  });
}

function toLaunchError(error: unknown, command: string): LaunchError {
  if (error instanceof LaunchError) return error;
  if (error instanceof KernelError) {
    switch (error.code) {
      case "ENOCMD":
        return new LaunchError("ENOCMD", `${command}: command not found`, { cause: error });
      case "EACCES":
        return new LaunchError("EACCES", error.message, { cause: error });
      case "ENOENT":
        return new LaunchError("ENOENT", error.message, { cause: error });
      case "ENONODE":
        return new LaunchError("ENONODE", error.message, { cause: error });
      case "EPLACE":
        return new LaunchError("EPLACE", error.message, { cause: error });
      default:
        return new LaunchError("EIO", error.message, { cause: error });
    }
  }
  return new LaunchError("EIO", (error as Error).message, { cause: error });
}
