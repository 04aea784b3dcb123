#!/usr/bin/env node
/**
 * CloudFS against its alternatives, in one run: CloudFS (cold and warm cache, each mount served by its
 * own fs-daemon process on a 3-server R3 NATS cluster), a local directory, an in-memory fuse-native
 * file system (the FUSE ceiling) and sshfs over loopback.
 *   node dist/bench/cloudfs/cloudfs-bench.js [--size MiB] [--files N]
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { planNatsCluster } from "../../cluster/nats-cluster-plan.js";
import { startNatsServer, waitForPort } from "../../cluster/nats-server.js";
import { fsBench, type FsBenchResult } from "../../vfs-fuse/index.js";
import { startChildMount } from "./child-mount.js";
import { startSshfsLoopback } from "./sshfs-loopback.js";

export const COLUMNS = ["CloudFS cold", "CloudFS warm", "local dir", "FUSE ceiling", "sshfs"] as const;
export type Column = (typeof COLUMNS)[number];

export interface BenchRow {
  readonly name: string;
  readonly unit: string;
  readonly values: Partial<Record<Column, number>>;
  readonly goal: string;
}

export interface CloudFsBenchReport {
  readonly rows: BenchRow[];
  readonly notes: string[];
}

export interface CloudFsBenchOptions {
  /** Bytes of the sequential file (default 1 GiB). */
  readonly sizeBytes?: number;
  /** Number of 128 KiB files (default 1,000). */
  readonly smallFiles?: number;
}

export async function runCloudFsBench(options: CloudFsBenchOptions = {}): Promise<CloudFsBenchReport> {
  const opts = { sizeBytes: options.sizeBytes ?? 1024 ** 3, smallFiles: options.smallFiles ?? 1000 };
  const dir = await mkdtemp(join(tmpdir(), "oneos-fsbench-"));
  const notes: string[] = [];
  const results: Partial<Record<Column, FsBenchResult>> = {};
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // --- CloudFS: node A writes, node B reads (cold, then warm) ---
    const names = ["s1", "s2", "s3"];
    const specs = await planNatsCluster(join(dir, "nats"), names);
    const servers: ChildProcess[] = [];
    cleanups.push(async () => {
      for (const s of servers) s.kill("SIGKILL");
    });
    for (const spec of specs) servers.push(await startNatsServer(spec));
    await Promise.all(specs.map((s) => waitForPort(s.clientPort)));
    const mountOf = async (i: number) => {
      const m = await startChildMount("../../vfs-fuse/fs-daemon", [
        "--nats", `nats://127.0.0.1:${specs[i]!.clientPort}`,
        "--mount", join(dir, `cloudfs${i}`),
        "--cache", join(dir, `cache${i}`),
        "--node-id", `bench${i}`,
        "--replicas", "3",
      ]);
      cleanups.push(() => m.stop());
      return join(dir, `cloudfs${i}`);
    };
    const a = await mountOf(0);
    const b = await mountOf(1);
    const cloud = await fsBench(join(a, "home"), { ...opts, readDir: join(b, "home"), reread: true });
    results["CloudFS cold"] = {
      ...(cloud.seqWriteMBps !== undefined ? { seqWriteMBps: cloud.seqWriteMBps } : {}),
      ...(cloud.seqReadMBps !== undefined ? { seqReadMBps: cloud.seqReadMBps } : {}),
      ...(cloud.createsPerSec !== undefined ? { createsPerSec: cloud.createsPerSec } : {}),
      ...(cloud.smallReadsPerSec !== undefined ? { smallReadsPerSec: cloud.smallReadsPerSec } : {}),
      ...(cloud.statsPerSec !== undefined ? { statsPerSec: cloud.statsPerSec } : {}),
    };
    results["CloudFS warm"] = {
      ...(cloud.seqRereadMBps !== undefined ? { seqReadMBps: cloud.seqRereadMBps } : {}),
      ...(cloud.smallRereadsPerSec !== undefined ? { smallReadsPerSec: cloud.smallRereadsPerSec } : {}),
    };
    notes.push("CloudFS: 3 nats-servers, buckets R3; writes through node A's mount, reads through node B's (cold: B never read the data; warm: B's second pass).");
    while (cleanups.length > 0) await cleanups.pop()!();

    // --- local directory ---
    results["local dir"] = await fsBench(join(dir, "local"), opts);

    // --- in-memory fuse-native: the ceiling ---
    const mem = await startChildMount("./mem-fuse-daemon", ["--mount", join(dir, "memfs")]);
    try {
      results["FUSE ceiling"] = await fsBench(join(dir, "memfs"), opts);
    } finally {
      await mem.stop();
    }

    // --- sshfs over loopback ---
    try {
      const ssh = await startSshfsLoopback(join(dir, "ssh"));
      try {
        results["sshfs"] = await fsBench(ssh.mountpoint, opts);
      } finally {
        await ssh.close();
      }
    } catch (err) {
      notes.push(`sshfs skipped: ${(err as Error).message.split("\n")[0]}`);
    }
  } finally {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
  const row = (name: string, unit: string, key: keyof FsBenchResult, goal: string): BenchRow => ({
    name,
    unit,
    goal,
    values: Object.fromEntries(COLUMNS.map((c) => [c, results[c]?.[key]]).filter(([, v]) => v !== undefined)),
  });
  const size = `${Math.round(opts.sizeBytes / 1024 ** 2)} MiB`;
  return {
    rows: [
      row(`seq write ${size}, 1 MiB I/O`, "MB/s", "seqWriteMBps", "≥ 300"),
      row(`seq read ${size}, 1 MiB I/O`, "MB/s", "seqReadMBps", "cold ≥ 250; warm ≥ 70 % of ceiling"),
      row(`${opts.smallFiles} × 128 KiB create+write`, "files/s", "createsPerSec", "≥ 1,000"),
      row(`${opts.smallFiles} × 128 KiB read`, "files/s", "smallReadsPerSec", ""),
      row(`${opts.smallFiles} × stat`, "stats/s", "statsPerSec", "≥ 40,000"),
    ],
    notes,
  };
}

export function formatCloudFsBench(report: CloudFsBenchReport): string {
  const fmt = (v: number | undefined): string => (v === undefined ? "—" : v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1));
  const header = ["", "unit", ...COLUMNS, "goal"];
  const lines = report.rows.map((r) => [r.name, r.unit, ...COLUMNS.map((c) => fmt(r.values[c])), r.goal]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [render(header), ...lines.map(render), ...report.notes.map((n) => `note: ${n}`)].join("\n");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { size: { type: "string" }, files: { type: "string" } } });
  const report = await runCloudFsBench({
    ...(values.size !== undefined ? { sizeBytes: Number(values.size) * 1024 ** 2 } : {}),
    ...(values.files !== undefined ? { smallFiles: Number(values.files) } : {}),
  });
  console.log(formatCloudFsBench(report));
  process.exit(0);
}
