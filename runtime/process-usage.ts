import { readFile } from "node:fs/promises";
import type { NodeRecord } from "../pseudokernel/index.js";

type ProcessUsage = NonNullable<NodeRecord["busiest"]>[number];

/** How many of a node's busiest processes its heartbeat carries (`oneos top` shows the cluster's top). */
const REPORTED = 8;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux we run on). */
const CLOCK_TICKS = 100;

/**
 * Samples the CPU use and resident size of this node's supervised processes from /proc, so the
 * heartbeat can name the busiest. Reads only /proc (never CloudFS), asynchronously.
 */
export class ProcessUsageSampler {
  #previous = new Map<number, { ticks: number; at: number }>();
  #latest: ProcessUsage[] = [];

  /** The busiest processes at the last sample, most CPU first. */
  get busiest(): readonly ProcessUsage[] {
    return this.#latest;
  }

  /** Takes a sample of `procs` (cluster pid → host pid). */
  async sample(procs: ReadonlyMap<number, number>): Promise<void> {
    const now = performance.now();
    const next = new Map<number, { ticks: number; at: number }>();
    const usage: ProcessUsage[] = [];
    await Promise.all(
      [...procs].map(async ([pid, hostPid]) => {
        const stat = await readFile(`/proc/${hostPid}/stat`, "utf8").catch(() => null);
        if (stat === null) return;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const ticks = Number(fields[11]) + Number(fields[12]);
        const rss = Number(fields[21]) * 4096;
        next.set(pid, { ticks, at: now });
        const before = this.#previous.get(pid);
        const cpu = before === undefined || now <= before.at ? 0 : ((ticks - before.ticks) / CLOCK_TICKS) / ((now - before.at) / 1000) * 100;
        usage.push({ pid, cpu: Math.max(0, Math.round(cpu * 10) / 10), rss: Number.isFinite(rss) ? rss : 0 });
      }),
    );
    this.#previous = next;
    this.#latest = usage.sort((a, b) => b.cpu - a.cpu || b.rss - a.rss).slice(0, REPORTED);
  }
}
