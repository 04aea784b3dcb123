import { readFileSync } from "node:fs";
import { spawn as spawnPty, type IPty } from "node-pty";
import {
  KernelError,
  parseSignal,
  StreamReader,
  StreamWriter,
  type SpawnRequest,
  type StreamTransport,
  type TtySpec,
} from "../pseudokernel/index.js";
import { resolveTarget, viaNsenter, type LocalExit, type ProcessView } from "./local-process.js";
import { withUmask } from "./native-spawn.js";
import { ROOT_IDENTITY, type FsIdentity } from "./as-user.js";
import { addon, PIDNS_PROGRAM } from "./native-addon.js";

/**
 * Terminal output kept for a client that attaches later: enough for the last screen of a large
 * terminal with its escape sequences (a full-screen program also redraws on the SIGWINCH an attach
 * sends), small enough that a thousand sessions cost little.
 */
const SCROLLBACK_BYTES = 64 * 1024;
/** The kill relay's listener is looked for after this, then twice as long each time up to the last. */
const ADOPT_FIRST_WAIT_MS = 5;
const ADOPT_MAX_WAIT_MS = 500;

/**
 * A process on a pseudo-terminal of this node (`ssh -t` style): keystrokes arrive on one stream and go
 * into the PTY, whose line discipline turns ^C into SIGINT for the foreground process group here; the
 * PTY's output goes out on another stream. When that stream's reader stops reading (a slow or frozen
 * terminal), the PTY is paused and the program blocks in write(2): output is paced, never piled up.
 *
 * The client can be replaced (`oneos attach`) or let go (`detach`): the process runs on and its recent
 * output is kept. A client that vanishes without detaching is a hang-up — the process group gets
 * SIGHUP, as when an ssh connection drops — unless the terminal was detached before.
 */
export class PtyProcess {
  readonly exited: Promise<LocalExit>;
  #pty: IPty;
  #input: StreamReader | undefined;
  #output: StreamWriter | undefined;
  #scrollback: Buffer[] = [];
  #scrollbackBytes = 0;
  #paused = false;
  /** Once detached, a vanished client is no hang-up. */
  #detachable = false;
  #ended = false;
  /** Started by `oneos-pidns enter`: the program is node-pty's child's child. */
  #viaPidns = false;
  /** Told when a client attaches or leaves (the process table shows it). */
  onTerminalChange: (state: "attached" | "detached") => void = () => undefined;

  private constructor(
    /** Its cluster PID. */
    readonly pid: number,
    pty: IPty,
  ) {
    this.#pty = pty;
    this.exited = new Promise((resolve) => {
      pty.onExit(({ exitCode, signal }) => {
        this.#ended = true;
        const name = signal !== undefined && signal > 0 ? parseSignal(String(signal)) : null;
        this.#output?.end();
        this.#input?.destroy();
        resolve({ code: name === null ? exitCode : null, signal: name, status: name === null ? exitCode & 0xff : 128 + (signal ?? 0) });
      });
    });
    pty.onData((data: string | Buffer) => this.#onOutput(typeof data === "string" ? Buffer.from(data) : data));
  }

  get hostPid(): number {
    return this.#pty.pid;
  }

  /** `pid` is its cluster PID, its own in the node's PID namespace; `ownPids` the node's block of them. */
  static async start(
    request: SpawnRequest,
    tty: TtySpec,
    transport: StreamTransport,
    pid: number,
    ownPids: readonly [number, number],
    view: ProcessView,
    who: FsIdentity = ROOT_IDENTITY,
  ): Promise<PtyProcess> {
    const [inSpec, outSpec] = request.stdio;
    if (inSpec.kind !== "stream" || outSpec.kind !== "stream") {
      throw new KernelError("EINVAL", "a terminal needs an input and an output stream");
    }
    const target = viaNsenter(await resolveTarget(request, view, who), pid, ownPids);
    let pty: IPty | undefined;
    withUmask(request.umask, () => {
      pty = spawnPty(target.file, target.args, {
        name: tty.term || "xterm-256color",
        cols: tty.cols,
        rows: tty.rows,
        cwd: target.cwd,
        env: { ...target.env, TERM: tty.term || "xterm-256color" },
        encoding: null,
      });
    });
    const process = new PtyProcess(pid, pty!);
    process.#viaPidns = target.file === PIDNS_PROGRAM;
    if (process.#viaPidns) process.#adoptKillRelay();
    process.#connect(new StreamReader(transport, inSpec.id), new StreamWriter(transport, outSpec.id), false);
    return process;
  }

  /**
   * `oneos-pidns enter` holds the kill relay's listener of the program (see pidns.c) once the program
   * has started: taken from it as soon as it is there, so the program's kill(2) reaches other nodes.
   */
  #adoptKillRelay(wait = ADOPT_FIRST_WAIT_MS): void {
    // Until it is taken the program's kill(2) of another node's PID waits: keep looking while it runs.
    if (this.#ended || addon.adoptKillListener(this.#pty.pid)) return;
    setTimeout(() => this.#adoptKillRelay(Math.min(wait * 2, ADOPT_MAX_WAIT_MS)), wait).unref();
  }

  /** The program's host PID: node-pty's child, or its child when `oneos-pidns enter` started it. */
  #programPid(): number {
    if (!this.#viaPidns) return this.#pty.pid;
    const children = (() => {
      try {
        return readFileSync(`/proc/${this.#pty.pid}/task/${this.#pty.pid}/children`, "utf8");
      } catch {
        return "";
      }
    })();
    const child = Number(children.trim().split(" ")[0]);
    return Number.isSafeInteger(child) && child > 0 ? child : this.#pty.pid;
  }

  /** The terminal's recent output, for `oneos logs` and the desktop. */
  get tail(): { read(): { data: Buffer; total: number } } {
    return { read: () => ({ data: Buffer.concat(this.#scrollback), total: this.#written }) };
  }

  #written = 0;

  #onOutput(bytes: Buffer): void {
    this.#written += bytes.length;
    this.#scrollback.push(bytes);
    this.#scrollbackBytes += bytes.length;
    while (this.#scrollbackBytes > SCROLLBACK_BYTES && this.#scrollback.length > 1) {
      this.#scrollbackBytes -= this.#scrollback.shift()!.length;
    }
    const output = this.#output;
    if (output !== undefined && !output.write(bytes) && !this.#paused) {
      this.#paused = true;
      this.#pty.pause();
      output.once("drain", () => this.#resume());
    }
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pty.resume();
  }

  #connect(input: StreamReader, output: StreamWriter, replay: boolean): void {
    this.#input = input;
    this.#output = output;
    if (replay && this.#scrollbackBytes > 0) output.write(Buffer.concat(this.#scrollback));
    input.on("data", (chunk: Buffer) => this.#pty.write(chunk));
    const lost = (): void => {
      if (this.#output !== output) return; // a replaced client
      this.#disconnect();
      if (!this.#detachable && !this.#ended) this.#hangUp();
    };
    output.on("error", lost);
    input.on("error", lost);
    this.onTerminalChange("attached");
  }

  /** Lets go of the current client; its output stream ends cleanly. */
  #disconnect(): void {
    const { input, output } = { input: this.#input, output: this.#output };
    this.#input = undefined;
    this.#output = undefined;
    input?.destroy();
    if (output !== undefined && !output.destroyed) output.end();
    this.#resume(); // nobody reads now: the program is not held back by a client that left
    if (!this.#ended) this.onTerminalChange("detached");
  }

  /** A new client takes the terminal: recent output is replayed, the window size set (SIGWINCH). */
  attach(input: StreamReader, output: StreamWriter, cols: number, rows: number): void {
    if (this.#ended) {
      // Let the caller's streams go now: left alone, their connect timeout would end in an 'error' nobody hears.
      input.destroy();
      output.destroy();
      throw new KernelError("ESRCH", "the process has ended");
    }
    if (this.#output !== undefined) this.#disconnect();
    this.#connect(input, output, true);
    this.#pty.resize(cols, rows);
  }

  detach(): void {
    this.#detachable = true;
    this.#disconnect();
  }

  #hangUp(): void {
    try {
      process.kill(-this.#pty.pid, "SIGHUP");
    } catch {
      // already gone
    }
  }

  /** To the terminal's process group, or with `only` to the program alone (kill(2) of its PID). */
  signal(signal: NodeJS.Signals, only = false): void {
    try {
      process.kill(only ? this.#programPid() : -this.#pty.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") throw new KernelError("ESRCH", "no such process");
      throw error;
    }
  }

  resize(cols: number, rows: number): void {
    this.#pty.resize(cols, rows);
  }

  abortStreams(reason: string): void {
    this.#output?.destroy(new KernelError("ECONNRESET", reason));
    this.#input?.destroy();
  }
}
