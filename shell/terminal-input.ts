import { PassThrough, type Readable, type Writable } from "node:stream";

interface TerminalLike extends Readable {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface KeySignals {
  /** Ctrl-C, Ctrl-\, Ctrl-Z typed while a job without a terminal of its own is in the foreground. */
  signal(name: "SIGINT" | "SIGQUIT" | "SIGTSTP"): void;
  /** The detach key (Ctrl-] then d) typed while a job on a terminal is in the foreground. */
  detach(): void;
}

/** Ctrl-]: the first key of the detach sequence (as telnet's escape); `d` after it detaches. */
export const DETACH_PREFIX = 0x1d;

/**
 * Bytes of typed input kept for a job that does not read them; the rest is dropped, as a tty drops
 * input beyond its buffer (4 KiB on Linux; a little more room for pasted text).
 */
const MAX_PENDING_INPUT = 64 * 1024;

/**
 * One foreground job's keyboard input. It outlives a stop: `fg` attaches the same stream again, so a
 * stopped `cat` or `vim` reads on where it left off.
 */
export class JobInput {
  readonly stream = new PassThrough({ highWaterMark: MAX_PENDING_INPUT });
  /** Pass keystrokes through untouched: the job has a pseudo-terminal of its own on its node. */
  raw = false;
  /** The line typed so far in cooked mode. */
  line = "";
}

/**
 * The shell's keyboard while a job is in the foreground. Processes may run on another machine, so the
 * local tty cannot be handed to them: for a job with a remote PTY, keystrokes pass through raw (the
 * PTY's line discipline on its node does echo and ^C); for other jobs a small line discipline runs
 * here (echo, backspace, Enter sends the line, Ctrl-D ends input, Ctrl-C/\ send signals). Ctrl-Z is
 * always the shell's: it stops the job and returns to the prompt.
 */
export class TerminalInput {
  #current: JobInput | null = null;
  /** Ctrl-] was the last key: the next one decides. */
  #prefixed = false;
  readonly #onData = (data: Buffer | string): void => this.#feed(typeof data === "string" ? Buffer.from(data) : data);

  constructor(
    private readonly terminal: TerminalLike,
    private readonly echo: Writable,
    private readonly keys: KeySignals,
  ) {}

  /** A fresh input for the next command line, attached. */
  begin(): JobInput {
    const job = new JobInput();
    this.attach(job);
    return job;
  }

  /** Routes the keyboard to `job` (a new command line, or `fg`). */
  attach(job: JobInput): void {
    if (this.#current === null) {
      if (this.terminal.isTTY === true) this.terminal.setRawMode?.(true);
      this.terminal.on("data", this.#onData);
      this.terminal.resume();
    }
    this.#current = job;
  }

  /** Back to the prompt: the keyboard goes to the line editor again; `job`'s stream stays open. */
  detach(): void {
    if (this.#current === null) return;
    this.terminal.off("data", this.#onData);
    if (this.terminal.isTTY === true) this.terminal.setRawMode?.(false);
    this.terminal.pause();
    this.#current = null;
  }

  /** The job has ended: its input ends too. */
  end(job: JobInput): void {
    if (this.#current === job) this.detach();
    job.stream.end();
  }

  #feed(bytes: Buffer): void {
    const job = this.#current;
    if (job === null) return;
    if (this.terminal.isTTY !== true) {
      job.stream.write(bytes);
      return;
    }
    if (job.raw) {
      // Everything goes to the remote PTY as typed, but Ctrl-Z (stop) and Ctrl-] d (detach).
      const out: number[] = [];
      for (const byte of bytes) {
        if (this.#prefixed) {
          this.#prefixed = false;
          if (byte === 0x64 /* d */) {
            this.keys.detach();
            continue;
          }
          out.push(DETACH_PREFIX);
          if (byte === DETACH_PREFIX) continue; // Ctrl-] Ctrl-] sends one Ctrl-]
        }
        if (byte === DETACH_PREFIX) this.#prefixed = true;
        else if (byte === 0x1a) this.keys.signal("SIGTSTP");
        else out.push(byte);
      }
      if (out.length > 0) job.stream.write(Buffer.from(out));
      return;
    }
    for (const ch of bytes.toString("utf8")) this.#cooked(job, ch);
  }

  #cooked(job: JobInput, ch: string): void {
    const out = job.stream;
    switch (ch) {
      case "\x03":
        this.echo.write("^C\r\n");
        job.line = "";
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
        if (job.line === "") out.end();
        else {
          out.write(job.line);
          job.line = "";
        }
        break;
      case "\x7f":
      case "\b":
        if (job.line !== "") {
          job.line = [...job.line].slice(0, -1).join("");
          this.echo.write("\b \b");
        }
        break;
      case "\r":
      case "\n":
        this.echo.write("\r\n");
        if (!out.writableEnded) out.write(`${job.line}\n`);
        job.line = "";
        break;
      default:
        job.line += ch;
        this.echo.write(ch);
    }
  }
}
