import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

/** Runs `sh -c LINE` and resolves with its wall time in ms (rejects on a non-zero exit). */
export async function timeShell(line: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn("sh", ["-c", line], { stdio: ["ignore", "ignore", "inherit"] });
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${line}: exit ${code}`))));
  });
  return performance.now() - started;
}

export interface SpawnResult {
  /** Wall time from spawn to exit. */
  readonly ms: number;
  /** Lines the program wrote to stdout (counted as they stream, not kept). */
  readonly lines: number;
  /** The start of its stdout, for programs whose answer is short (`du -s`, `git rev-parse`). */
  readonly head: string;
}

/**
 * Runs a program (no shell) as a child process and resolves when it exits 0, with its wall time;
 * rejects with the end of its stderr otherwise, or when it runs past `timeoutMs` (it is killed).
 * Async: safe against a FUSE mount another process serves, and never blocks this event loop.
 */
export async function spawnTimed(
  file: string,
  args: readonly string[],
  options: { readonly cwd?: string; readonly timeoutMs?: number } = {},
): Promise<SpawnResult> {
  const started = performance.now();
  return await new Promise<SpawnResult>((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], ...(options.cwd !== undefined ? { cwd: options.cwd } : {}) });
    let lines = 0;
    let head = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      if (head.length < 4096) head += chunk.toString("utf8", 0, Math.min(chunk.length, 4096 - head.length));
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    const timeoutMs = options.timeoutMs ?? 15 * 60_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (code === 0) return resolve({ ms, lines, head });
      const said = stderr.trim().split("\n").slice(-2).join(" / ");
      const why = timedOut ? `killed after ${Math.round(timeoutMs / 1000)} s` : signal !== null ? `killed by ${signal}` : `exit ${code}`;
      reject(new Error(`${[file, ...args].join(" ")}: ${why}${said ? `: ${said}` : ""}`));
    });
  });
}

/** The p-th percentile (0–100) of the values, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Samples the RSS of some processes every `everyMs` until stopped; returns the peak of each. */
export function sampleRss(pids: readonly number[], everyMs = 100): { stop(): number[] } {
  const peaks = pids.map(() => 0);
  const timer = setInterval(() => {
    pids.forEach((pid, i) => {
      void readFile(`/proc/${pid}/status`, "utf8").then(
        (status) => {
          const match = /VmRSS:\s+(\d+) kB/.exec(status);
          if (match !== null) peaks[i] = Math.max(peaks[i]!, Number(match[1]) * 1024);
        },
        () => undefined,
      );
    });
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}

/** Renders rows as a plain-text table with a header rule. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  return [line(header), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join("\n");
}

export const MB = 1e6;
