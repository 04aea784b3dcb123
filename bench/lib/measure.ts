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
