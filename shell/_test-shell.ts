import { spawnSync } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { runShell } from "./index.js";
import { LocalExecutor } from "./local-executor.js";

/** What a shell run printed and returned (for the shell's unit tests). */
export interface ShellRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number;
}

class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** Runs `command` like `oneos shell --local -c`, with nodes n1..n3. */
export async function runOneos(
  command: string,
  options: { cwd?: string; stdin?: string; env?: Record<string, string>; killPid?: (pid: number, signal: string) => Promise<void> } = {},
): Promise<ShellRun> {
  const executor = new LocalExecutor({ nodes: ["n1", "n2", "n3"], labels: { n2: { gpu: "1" } } });
  const stdout = new Collect();
  const stderr = new Collect();
  try {
    const status = await runShell({
      executor,
      env: options.env ?? { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: "/tmp/oneos-home", LC_ALL: "C" },
      cwd: options.cwd ?? process.cwd(),
      home: "/tmp/oneos-home",
      user: "tester",
      command,
      interactive: false,
      stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
      stdout,
      stderr,
      ...(options.killPid === undefined ? {} : { killPid: options.killPid }),
    });
    return { stdout: stdout.text(), stderr: stderr.text(), status };
  } finally {
    executor.close();
  }
}

/** The same command under the system's `sh -c` (dash on Debian), for byte-exact comparisons. */
export function runSh(command: string, options: { cwd?: string } = {}): ShellRun {
  const result = spawnSync("sh", ["-c", command], {
    cwd: options.cwd ?? process.cwd(),
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: "/tmp/oneos-home", LC_ALL: "C" },
    maxBuffer: 256 * 1024 * 1024,
  });
  return { stdout: result.stdout.toString("utf8"), stderr: result.stderr.toString("utf8"), status: result.status ?? 128 };
}
