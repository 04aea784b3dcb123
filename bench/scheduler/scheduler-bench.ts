import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalCluster } from "../../cluster/index.js";
import { KernelClient, loadCredentials, type NodeRecord } from "../../pseudokernel/index.js";
import { chooseNode, type Candidate, type PlacementSpec, type Strategy } from "../../scheduler/index.js";
import { ClusterExecutor } from "../../shell/index.js";
import type { LaunchRequest } from "../../shell/index.js";

export interface SchedulerBenchOptions {
  /** Short processes spawned over the real cluster (and locally, for the reference). */
  readonly spawns?: number;
  /** Spawns in flight at once. */
  readonly concurrency?: number;
  /** Skip the real-cluster rows (pure scheduler only). */
  readonly pureOnly?: boolean;
}

/** A deterministic pseudo-random sequence (the bench must place the same cluster every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function simulatedCluster(n: number): Candidate[] {
  const rand = lcg(n);
  const zones = ["a", "b", "c", "d"];
  return Array.from({ length: n }, (_, i) => {
    const cpus = [2, 4, 8, 16, 32][Math.floor(rand() * 5)]!;
    const mem = cpus * 4 * 2 ** 30;
    const record: NodeRecord = {
      name: `node-${i}`,
      state: "ready",
      labels: { zone: zones[i % zones.length]!, ...(i % 10 === 0 ? { gpu: "1" } : {}) },
      nats: "",
      pid: 1,
      cpus,
      load: rand() * cpus,
      memTotal: mem,
      memFree: mem * rand(),
      procs: Math.floor(rand() * 40),
      mount: null,
      heartbeat: 0,
      started: 0,
      allocatable: { cpu: cpus, mem },
      reserved: { cpu: Math.floor(rand() * cpus), mem: Math.floor(rand() * mem) },
    };
    return { record, state: i % 50 === 7 ? "down" : "ready", pending: 0 };
  });
}

/** The mix of requests placed: unconstrained, labelled, with resources, labelled with resources. */
const REQUESTS: readonly PlacementSpec[] = [
  { labels: [], resources: { cpu: 0, mem: 0 } },
  { labels: [{ key: "zone", op: "in", values: ["a", "b"] }], resources: { cpu: 0, mem: 0 } },
  { labels: [], resources: { cpu: 1, mem: 2 ** 30 } },
  { labels: [{ key: "gpu", op: "in", values: ["1"] }, { key: "zone", op: "notin", values: ["d"] }], resources: { cpu: 2, mem: 4 * 2 ** 30 } },
];

/** Placement decisions per second over `n` simulated nodes (each decision filters and scores every node). */
function decisionsPerSecond(n: number, strategy: Strategy, exhaustive: boolean): number {
  const options = { strategy, ...(exhaustive ? { sampleAbove: Infinity } : {}) };
  const nodes = simulatedCluster(n);
  const budgetMs = 1500;
  let decisions = 0;
  // Warm-up so the JIT has compiled the filters and scores.
  for (let i = 0; i < 200; i++) chooseNode(REQUESTS[i % REQUESTS.length]!, nodes, options);
  const started = performance.now();
  while (performance.now() - started < budgetMs) {
    for (let i = 0; i < 50; i++) {
      if (chooseNode(REQUESTS[decisions % REQUESTS.length]!, nodes, options) === null) throw new Error("no node");
      decisions++;
    }
  }
  return decisions / ((performance.now() - started) / 1000);
}

/** Runs `count` jobs with at most `concurrency` in flight; resolves with the wall time in ms. */
async function pool(count: number, concurrency: number, job: () => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await job();
      }
    }),
  );
  return performance.now() - started;
}

function localTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/true", [], { stdio: "ignore" });
    child.once("exit", () => resolve());
    child.once("error", reject);
  });
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/**
 * The scheduler issue's benchmark: placement decisions per second at 1,000 and 10,000 simulated nodes
 * (pure scheduler), and the cluster-wide spawn rate of short processes over 3 real nodes next to local
 * `spawn('/bin/true')` at the same concurrency. Returns the table as printed.
 */
export async function runSchedulerBench(options: SchedulerBenchOptions = {}): Promise<string> {
  const rows: string[][] = [["scheduler", "figure", "reference / goal"]];
  for (const n of [1000, 10_000]) {
    for (const strategy of ["spread", "binpack"] as const) {
      for (const exhaustive of [false, true]) {
        const rate = decisionsPerSecond(n, strategy, exhaustive);
        const how = exhaustive ? "every node scored" : "sample of 32 feasible";
        rows.push([`placement decisions, ${n.toLocaleString("en")} nodes, ${strategy}, ${how}`, `${Math.round(rate).toLocaleString("en")}/s`, n === 1000 ? "goal ≥ 5,000/s; Nomad C1M ≈ 3,750/s" : "-"]);
      }
    }
  }
  if (options.pureOnly !== true) {
    const spawns = options.spawns ?? 600;
    const concurrency = options.concurrency ?? 16;
    const localMs = await pool(spawns, concurrency, localTrue);
    const home = await mkdtemp(join(tmpdir(), "oneos-sched-bench-"));
    const cluster = new LocalCluster(home);
    try {
      await cluster.up({ nodes: 3 });
      const kernel = await KernelClient.connect((await cluster.anyUrl())!, {
        name: "oneos-sched-bench",
        credentials: await loadCredentials(cluster.credentialsFile("shell")),
      });
      // A root session, issued through the admin identity as for `oneos shell` on the owner's machine.
      kernel.session = await KernelClient.issueSession((await cluster.anyUrl())!, await loadCredentials(cluster.credentialsFile("admin")), "root");
      const executor = await ClusterExecutor.create(kernel);
      const perNode = new Map<string, number>();
      const request: LaunchRequest = {
        argv: ["true"],
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
        cwd: "/",
        umask: 0o022,
        placement: { kind: "auto" },
        stdin: { kind: "null" },
        stdout: { kind: "null" },
        stderr: { kind: "null" },
      };
      const one = async (): Promise<void> => {
        const handle = await executor.launch(request);
        perNode.set(handle.node, (perNode.get(handle.node) ?? 0) + 1);
        const status = await handle.wait();
        if (status.status !== 0) throw new Error(`true: status ${status.status}`);
      };
      await pool(60, concurrency, one); // warm-up: PID blocks claimed, connections open
      perNode.clear();
      const clusterMs = await pool(spawns, concurrency, one);
      executor.close();
      await kernel.close();
      const clusterRate = spawns / (clusterMs / 1000);
      const localRate = spawns / (localMs / 1000);
      const spread = [...perNode].sort().map(([n, c]) => `${n} ${c}`).join(", ");
      rows.push([`spawn + exit of \`true\`, 3 real nodes, ${concurrency} in flight`, `${Math.round(clusterRate)}/s`, `goal ≥ 200/s; ${(clusterRate / localRate).toFixed(2)}× of local`]);
      rows.push([`local spawn('/bin/true'), ${concurrency} in flight`, `${Math.round(localRate)}/s`, "1.00×"]);
      rows.push([`  where the ${spawns} landed`, spread, ""]);
    } finally {
      await cluster.down().catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    }
  }
  return `Scheduler (issue 4)\n${table(rows)}`;
}
