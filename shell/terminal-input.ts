import { PassThrough, type Readable, type Writable } from "node:stream";

/**
 * Where a foreground job's standard input comes from while the interactive shell waits for it. This
 * implementation is a small line discipline over the raw terminal (the processes may run on another
 * machine, so the local tty cannot be handed to them); a PTY mode (issue 5) replaces it by forwarding
 * raw bytes and resize events to a remote pseudo-terminal instead.
 */
export interface ForegroundInput {
  /** Starts feeding a fresh stream for the next foreground job. */
  start(): Readable;
  /** Stops feeding it (the job has finished). */
  stop(): void;
}

interface TerminalLike extends Readable {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface KeySignals {
  /** Ctrl-C, Ctrl-\, Ctrl-Z: a signal for the foreground job. */
  signal(name: "SIGINT" | "SIGQUIT" | "SIGTSTP"): void;
}

/**
 * Bytes of typed input kept for a job that does not read them; the rest is dropped, as a tty drops
 * input beyond its buffer (4 KiB on Linux; a little more room for pasted text).
 */
const MAX_PENDING_INPUT = 64 * 1024;

/** Cooked-mode input emulation: echo, backspace, Enter sends the line, Ctrl-D ends input. */
export class LineDisciplineInput implements ForegroundInput {
  #current: PassThrough | null = null;
  #line = "";
  readonly #onData = (data: Buffer | string): void => this.#feed(typeof data === "string" ? data : data.toString("utf8"));

  constructor(
    private readonly terminal: TerminalLike,
    private readonly echo: Writable,
    private readonly keys: KeySignals,
  ) {}

  start(): Readable {
    const stream = new PassThrough({ highWaterMark: MAX_PENDING_INPUT });
    this.#current = stream;
    this.#line = "";
    if (this.terminal.isTTY === true) this.terminal.setRawMode?.(true);
    this.terminal.on("data", this.#onData);
    this.terminal.resume();
    return stream;
  }

  stop(): void {
    this.terminal.off("data", this.#onData);
    if (this.terminal.isTTY === true) this.terminal.setRawMode?.(false);
    this.terminal.pause();
    this.#current?.end();
    this.#current = null;
  }

  #feed(text: string): void {
    const out = this.#current;
    if (out === null) return;
    if (this.terminal.isTTY !== true) {
      out.write(text);
      return;
    }
    for (const ch of text) {
      switch (ch) {
        case "\x03":
          this.echo.write("^C\r\n");
          this.#line = "";
          this.keys.signal("SIGINT");
          break;
        case "\x1c":
          this.echo.write("^\\\r\n");
          this.keys.signal("SIGQUIT");
          break;
        case "\x1a":
          this.echo.write("^Z\r\n");
          this.keys.signal("SIGTSTP");
          break;
        case "\x04":
          if (this.#line === "") out.end();
          else {
            out.write(this.#line);
            this.#line = "";
          }
          break;
        case "\x7f":
        case "\b":
          if (this.#line !== "") {
            this.#line = [...this.#line].slice(0, -1).join("");
            this.echo.write("\b \b");
          }
          break;
        case "\r":
        case "\n":
          this.echo.write("\r\n");
          if (!out.writableEnded) out.write(`${this.#line}\n`);
          this.#line = "";
          break;
        default:
          this.#line += ch;
          this.echo.write(ch);
      }
    }
  }
}
