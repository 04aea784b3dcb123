import { randomBytes } from "node:crypto";
import * as pty from "node-pty";
import type { WebSocket } from "ws";
import { DETACHED_TERMINAL_MS, REPLAY_BYTES, TERMINAL_HIGH_WATERMARK, TERMINAL_LOW_WATERMARK } from "./limits.js";
import { ReplayBuffer } from "./replay-buffer.js";
import { parseTerminalInput, type TerminalNotice } from "./terminal-messages.js";

export interface ShellTerminalOptions {
  /** The oneos CLI (`dist/cli/oneos.cjs`): the terminal runs `node CLI shell`, as a local terminal would. */
  readonly cli: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly cols: number;
  readonly rows: number;
  /** The login session that opened it: only that session may attach. */
  readonly owner: string;
  /** Called once when the shell has exited or the terminal was closed. */
  readonly onGone: (terminal: ShellTerminal) => void;
}

function notice(ws: WebSocket, message: TerminalNotice): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

/**
 * One oneos shell in a PTY, outliving the browser tab that shows it: a reload re-attaches to the same
 * shell and gets the recent output replayed. Output is flow-controlled by the browser's acks
 * (see TERMINAL_HIGH_WATERMARK); while nobody is attached the PTY is paused, as a terminal nobody reads.
 */
export class ShellTerminal {
  readonly id = randomBytes(16).toString("base64url");
  readonly owner: string;
  readonly #pty: pty.IPty;
  readonly #replay = new ReplayBuffer(REPLAY_BYTES);
  readonly #onGone: (terminal: ShellTerminal) => void;
  #socket: WebSocket | null = null;
  /** Bytes sent to the attached browser that it has not yet acknowledged as rendered. */
  #unacked = 0;
  #paused = false;
  #detachedTimer: NodeJS.Timeout | undefined;
  #gone = false;

  constructor(options: ShellTerminalOptions) {
    this.owner = options.owner;
    this.#onGone = options.onGone;
    this.#pty = pty.spawn(process.execPath, [options.cli, "shell"], {
      name: "xterm-256color",
      cols: options.cols,
      rows: options.rows,
      cwd: options.cwd,
      env: { ...options.env },
      encoding: null,
    });
    this.#pty.onData((data: string | Buffer) => this.#output(typeof data === "string" ? Buffer.from(data) : data));
    this.#pty.onExit(({ exitCode, signal }) => {
      if (this.#socket !== null) {
        notice(this.#socket, { type: "exit", code: exitCode, signal: signal ?? null });
        this.#socket.close(1000, "shell exited");
      }
      this.#end();
    });
    this.#setPaused(true); // until a browser attaches
    this.#armDetachedTimer();
  }

  get pid(): number {
    return this.#pty.pid;
  }

  /** Shows this terminal in `ws`, replacing any browser attached before (the newest tab wins). */
  attach(ws: WebSocket, fresh: boolean): void {
    const previous = this.#socket;
    this.#socket = ws;
    clearTimeout(this.#detachedTimer);
    if (previous !== null && previous !== ws) previous.close(4001, "attached elsewhere");
    notice(ws, { type: "attached", session: this.id, fresh });
    const replay = this.#replay.contents();
    this.#unacked = 0;
    if (replay.length > 0) this.#send(replay);
    this.#setPaused(this.#unacked > TERMINAL_HIGH_WATERMARK);

    ws.on("message", (data, isBinary) => {
      if (ws !== this.#socket || isBinary) return;
      const message = parseTerminalInput(String(data));
      if (message === null) return;
      switch (message.type) {
        case "input":
          this.#pty.write(message.data);
          break;
        case "resize":
          this.#pty.resize(message.cols, message.rows);
          break;
        case "ack":
          this.#unacked = Math.max(0, this.#unacked - message.bytes);
          if (this.#paused && this.#unacked < TERMINAL_LOW_WATERMARK) this.#setPaused(false);
          break;
        default: {
          const never: never = message;
          throw new Error(`unhandled terminal message ${JSON.stringify(never)}`);
        }
      }
    });
    ws.once("close", () => {
      if (ws !== this.#socket) return;
      this.#socket = null;
      this.#setPaused(true);
      this.#armDetachedTimer();
    });
  }

  #output(chunk: Buffer): void {
    this.#replay.push(chunk);
    if (this.#socket === null) return;
    this.#send(chunk);
    if (!this.#paused && this.#unacked > TERMINAL_HIGH_WATERMARK) this.#setPaused(true);
  }

  #send(chunk: Buffer): void {
    const ws = this.#socket;
    if (ws === null || ws.readyState !== ws.OPEN) return;
    ws.send(chunk, { binary: true });
    this.#unacked += chunk.length;
  }

  #setPaused(paused: boolean): void {
    if (this.#gone || paused === this.#paused) return;
    this.#paused = paused;
    if (paused) this.#pty.pause();
    else this.#pty.resume();
  }

  #armDetachedTimer(): void {
    clearTimeout(this.#detachedTimer);
    this.#detachedTimer = setTimeout(() => this.close(), DETACHED_TERMINAL_MS);
    this.#detachedTimer.unref();
  }

  #end(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#detachedTimer);
    this.#onGone(this);
  }

  /** Hangs up the shell (SIGHUP, as closing a terminal window does) and forgets the terminal. */
  close(): void {
    if (this.#gone) return;
    this.#socket?.close(1001, "terminal closed");
    try {
      this.#pty.kill("SIGHUP");
    } catch {
      // already gone
    }
    this.#end();
  }
}
