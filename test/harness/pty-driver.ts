import { spawn, type IPty } from "node-pty";
import { CLI } from "./oneos-cluster.js";

/**
 * A real terminal around a oneos command (the interactive shell, `oneos attach`): type keys, wait for
 * what the screen shows. Output is kept as one string with ANSI escapes stripped for matching.
 */
export class PtyDriver {
  readonly pty: IPty;
  #output = "";
  #exit: Promise<{ exitCode: number; signal?: number | undefined }>;

  /** `args` of the oneos CLI, or with `program` a whole command line of another program (a wrapper). */
  constructor(args: readonly string[], options: { home: string; cols?: number; rows?: number; program?: string }) {
    this.pty = spawn(options.program ?? process.execPath, options.program !== undefined ? [...args] : [CLI, ...args], {
      name: "xterm-256color",
      cols: options.cols ?? 100,
      rows: options.rows ?? 30,
      cwd: process.cwd(),
      env: { ...process.env, ONEOS_HOME: options.home, TERM: "xterm-256color" } as Record<string, string>,
    });
    this.pty.onData((data) => (this.#output += data));
    this.#exit = new Promise((resolve) => this.pty.onExit(resolve));
  }

  /** Everything shown so far, without escape sequences. */
  get text(): string {
    // eslint-disable-next-line no-control-regex
    return this.#output.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r/g, "");
  }

  /** Output from now on only (for waiting on something new). */
  mark(): number {
    return this.text.length;
  }

  type(keys: string): void {
    this.pty.write(keys);
  }

  /** Resolves with the elapsed ms once `pattern` shows up after `from`, or fails after `timeoutMs`. */
  async waitFor(pattern: RegExp | string, options: { from?: number; timeoutMs?: number } = {}): Promise<number> {
    const started = Date.now();
    const deadline = started + (options.timeoutMs ?? 15_000);
    for (;;) {
      const seen = this.text.slice(options.from ?? 0);
      if (typeof pattern === "string" ? seen.includes(pattern) : pattern.test(seen)) return Date.now() - started;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${String(pattern)}; screen so far:\n${seen.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  exited(): Promise<{ exitCode: number; signal?: number | undefined }> {
    return this.#exit;
  }

  kill(signal = "SIGHUP"): void {
    try {
      this.pty.kill(signal);
    } catch {
      // gone
    }
  }
}
