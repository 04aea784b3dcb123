import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { constants } from "node:os";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { Command } from "commander";
import { isAlive } from "../cluster/cluster-state.js";
import { agentPidFile, oneosHome, readAgentPid } from "../cluster/home.js";
import type { KernelClient, Session } from "../pseudokernel/index.js";
import wire from "./agent-wire.cjs";
import { addClientVerbs } from "./client-verbs.js";
import { clusterUrl, connectKernel } from "./find-cluster.js";
import { keepSessionFresh, startShellSession } from "./login.js";
import { runProgram } from "./run-program.js";
import { clusterShell, type ShellIo } from "./shell-verb.js";

/** An agent nobody called for this long stops. */
const IDLE_MS = 10 * 60_000;
/** A cluster the agent cannot reach for this long is taken for gone. */
const GONE_MS = 30_000;
/** A command gone without an exit ends its shell as a hung-up terminal does. */
const HANG_UP = 128 + constants.signals.SIGHUP;

/** The call a command hands to the agent (its `H` frame). */
interface AgentCall {
  readonly argv: string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
}

function parseCall(payload: Buffer): AgentCall | undefined {
  try {
    const v = JSON.parse(payload.toString()) as Partial<AgentCall> | null;
    if (v === null || typeof v !== "object" || !Array.isArray(v.argv) || typeof v.cwd !== "string" || typeof v.env !== "object" || v.env === null) return undefined;
    if (!v.argv.every((a) => typeof a === "string") || !Object.values(v.env).every((e) => typeof e === "string")) return undefined;
    return { argv: v.argv, cwd: v.cwd, env: v.env };
  } catch {
    return undefined;
  }
}

/**
 * `oneos agent` (started by the `oneos` command, not by hand): keeps the local cluster's connections
 * and the root shell's session open, and runs `ps`, `nodes` and `shell -c` for the `oneos` commands of
 * its user, which hand it their arguments, environment, working directory and standard streams over a
 * UNIX socket in ONEOS_HOME (mode 0600). A call then costs a node start-up and the verb's own
 * requests, not the connects, the session and the loading of the CLI, as ssh's ControlMaster spares
 * a connection its handshakes. It stops after ten idle minutes, when its cluster connection closes,
 * or when `oneos cluster down` stops it.
 */
export async function agentVerb(): Promise<number> {
  const home = oneosHome();
  const socket = wire.agentSocket(home);
  if (socket === undefined) return 1;
  if (!claimPidFile(home)) return 0; // another agent runs
  try {
    const url = await clusterUrl(undefined);
    const [admin, shell] = await Promise.all([
      connectKernel(url, "oneos-agent", "admin"),
      startShellSession(connectKernel(url, "oneos-agent-shell", "shell"), { user: undefined, nats: url }),
    ]);
    const agent = new Agent(url, admin, shell);
    await agent.listen(socket);
    return await agent.stopped;
  } finally {
    if (readAgentPid(home) === process.pid) rmSync(agentPidFile(home), { force: true });
  }
}

/** Writes our PID to the agent's PID file unless a live agent's is there. */
function claimPidFile(home: string): boolean {
  const file = agentPidFile(home);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (isAlive(readAgentPid(home) ?? null)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

class Agent {
  readonly stopped: Promise<number>;
  #stop: (status: number) => void = () => undefined;
  #server: Server | undefined;
  #socket = "";
  readonly #calls = new Set<CallStreams>();
  #idle: NodeJS.Timeout | undefined;
  readonly #stopRefreshing: () => void;

  constructor(
    readonly url: string,
    readonly admin: KernelClient,
    readonly shell: { kernel: KernelClient; session: Session },
  ) {
    this.stopped = new Promise<number>((resolve) => (this.#stop = resolve));
    this.#stopRefreshing = keepSessionFresh(shell.kernel, () => void this.stop(1));
    for (const kernel of [admin, shell.kernel]) void kernel.nc.closed().then(() => this.stop(1));
    this.#watchConnection();
    for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(signal, () => void this.stop(0));
  }

  async listen(socket: string): Promise<void> {
    // A socket left by an agent that died: nobody answers on it.
    const answered = await new Promise<boolean>((resolve) => {
      const probe = connect(socket, () => (probe.destroy(), resolve(true)));
      probe.once("error", () => resolve(false));
    });
    if (answered) return void this.stop(0);
    rmSync(socket, { force: true });
    const server = createServer((conn) => this.#serve(conn));
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(socket, resolve);
      });
    } finally {
      process.umask(umask);
    }
    this.#server = server;
    this.#socket = socket;
    this.#armIdle();
  }

  async stop(status: number): Promise<void> {
    if (this.#server === undefined && this.#socket === "") return this.#stop(status);
    const server = this.#server;
    this.#server = undefined;
    clearTimeout(this.#idle);
    server?.close();
    if (this.#socket !== "") rmSync(this.#socket, { force: true });
    this.#socket = "";
    // Its callers' shells end as a hung-up terminal's.
    for (const call of this.#calls) call.finish(HANG_UP);
    this.#stopRefreshing();
    await Promise.allSettled([this.admin.close(), this.shell.kernel.close()]);
    this.#stop(status);
  }

  /** A cluster unreachable for `GONE_MS` (stopped without `oneos cluster down`, or gone): the agent goes too. */
  #watchConnection(): void {
    let since: number | undefined;
    void (async () => {
      for await (const status of this.admin.nc.status()) {
        if (status.type === "disconnect") since ??= Date.now();
        else if (status.type === "reconnect") since = undefined;
      }
    })().catch(() => undefined);
    const timer = setInterval(() => {
      if (since !== undefined && Date.now() - since > GONE_MS) void this.stop(1);
    }, 5_000);
    timer.unref();
    void this.stopped.then(() => clearInterval(timer));
  }

  #armIdle(): void {
    clearTimeout(this.#idle);
    if (this.#calls.size === 0) this.#idle = setTimeout(() => void this.stop(0), IDLE_MS);
  }

  #serve(conn: Socket): void {
    const reader = new wire.FrameReader();
    let call: CallStreams | undefined;
    conn.on("error", () => undefined);
    conn.on("data", (chunk: Buffer) => {
      let frames: [string, Buffer][];
      try {
        frames = reader.push(chunk);
      } catch {
        return void conn.destroy();
      }
      for (const [type, payload] of frames) {
        if (call !== undefined) {
          call.frame(type, payload);
          continue;
        }
        const request = type === "H" ? parseCall(payload) : undefined;
        if (request === undefined) return void conn.destroy();
        call = new CallStreams(conn);
        this.#run(call, request);
      }
    });
  }

  #run(call: CallStreams, request: AgentCall): void {
    this.#calls.add(call);
    clearTimeout(this.#idle);
    const io: ShellIo = {
      stdin: call.stdin,
      stdout: call.stdout,
      stderr: call.stderr,
      env: request.env,
      cwd: request.cwd,
      // A signal to the shell through the process table ends it through `ended` here.
      end: (status) => call.finish(status),
      hangUp: () => call.finish(HANG_UP),
      ended: call.ended,
    };
    const build = (run: (work: Promise<number>) => void): Command => {
      const program = new Command("oneos")
        .exitOverride()
        .showHelpAfterError()
        .configureOutput({ writeOut: (s) => void call.stdout.write(s), writeErr: (s) => void call.stderr.write(s) });
      addClientVerbs(program, run, { kernel: this.admin, out: call.stdout, err: call.stderr });
      program
        .command("shell")
        .option("-c <line>", "run one command line and exit with its status")
        .action((options: { c?: string }) =>
          run(clusterShell(this.shell.kernel, this.shell.session, this.url, io, { interactive: false, ...(options.c !== undefined ? { command: options.c } : {}) })),
        );
      return program;
    };
    runProgram(build, ["node", "oneos", ...request.argv], call.stderr)
      .catch((error: unknown) => {
        call.stderr.write(`oneos: internal error: ${(error as Error).stack ?? String(error)}\n`);
        return 1;
      })
      .then((status) => call.exit(status))
      .finally(() => {
        this.#calls.delete(call);
        this.#armIdle();
      });
  }
}

/** One call's standard streams over its connection, and how it ends. */
class CallStreams {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Settles with the status the command's signal or disappearance ends its shell with. */
  readonly ended: Promise<number>;
  finish: (status: number) => void = () => undefined;
  #askedForInput = false;
  #paused = false;

  constructor(private readonly conn: Socket) {
    this.ended = new Promise<number>((resolve) => (this.finish = resolve));
    this.stdin = new Readable({
      highWaterMark: 1 << 20,
      read: () => {
        // The command sends its stdin once something here reads it (a terminal's typed-ahead lines stay its shell's).
        if (!this.#askedForInput) {
          this.#askedForInput = true;
          this.#send("W");
        }
        if (this.#paused) {
          this.#paused = false;
          conn.resume();
        }
      },
    });
    const output = (type: string): Writable =>
      new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          if (conn.destroyed) return done(Object.assign(new Error("the oneos command went away"), { code: "EPIPE" }));
          conn.write(wire.frame(type, chunk), done);
        },
      });
    this.stdout = output("O");
    this.stderr = output("R");
    // A shell a signal ended may write on after its exit: that goes nowhere, and never throws here.
    for (const s of [this.stdout, this.stderr]) s.on("error", () => undefined);
    // Gone without an exit (killed, or its terminal closed): its shell ends as on a hang-up.
    conn.once("close", () => this.finish(HANG_UP));
  }

  frame(type: string, payload: Buffer): void {
    if (type === "I") {
      if (!this.stdin.push(payload)) {
        this.#paused = true;
        this.conn.pause();
      }
    } else if (type === "E") {
      this.stdin.push(null);
    } else if (type === "S") {
      const signal = payload.toString();
      if ((wire.HANDED_SIGNALS as readonly string[]).includes(signal)) this.finish(128 + constants.signals[signal as NodeJS.Signals]);
    } else if (type === "P") {
      this.stdout.destroy(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    }
  }

  /** Sends the exit status once what the verb wrote went out before it. */
  async exit(status: number): Promise<void> {
    const outputs = [this.stdout, this.stderr];
    for (const s of outputs) s.end();
    await Promise.all(outputs.map((s) => finished(s).catch(() => undefined)));
    this.#send("X", String(status));
    this.conn.end();
  }

  #send(type: string, payload?: string): void {
    if (!this.conn.destroyed) this.conn.write(wire.frame(type, payload));
  }
}
