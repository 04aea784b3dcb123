import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForPort } from "../../cluster/index.js";
import { startLoopbackSshd } from "../lib/loopback-sshd.js";
import { median, percentile, renderTable } from "../lib/measure.js";

const TOOL = fileURLToPath(new URL("./bench-tool.py", import.meta.url)).replace("/dist/bench/", "/bench/");
/** The built CLI: from dist/bench/netstack, or from the sources when run by a TypeScript loader. */
const CLI = ((): string => {
  const built = fileURLToPath(new URL("../../cli/oneos.cjs", import.meta.url));
  return existsSync(built) ? built : fileURLToPath(new URL("../../dist/cli/oneos.cjs", import.meta.url));
})();

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], env: Record<string, string> = {}, timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ status: code, stdout, stderr });
    });
  });
}

/** A throw-away local cluster in its own ONEOS_HOME, driven through the CLI as a user would. */
async function startCluster(): Promise<{ oneos(args: string[]): Promise<Run>; start(args: string[]): ChildProcess; close(): Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), "oneos-bench-net-"));
  const env = { ONEOS_HOME: home };
  const oneos = (args: string[]): Promise<Run> => run(process.execPath, [CLI, ...args], env);
  const up = await oneos(["cluster", "up", "--nodes", "3"]);
  if (up.status !== 0) throw new Error(`cluster up: ${up.stderr}`);
  const started: ChildProcess[] = [];
  return {
    oneos,
    start: (args) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: "ignore" });
      started.push(child);
      return child;
    },
    async close() {
      for (const c of started) c.kill("SIGTERM");
      await oneos(["cluster", "down"]);
      await rm(home, { recursive: true, force: true });
    },
  };
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface NetstackBenchOptions {
  /** Bytes through the one connection of each throughput run. */
  readonly bytes?: number;
  readonly runs?: number;
  /** Connections timed for set-up latency. */
  readonly connections?: number;
}

interface Row {
  readonly path: string;
  readonly mbps: number[];
  readonly setupMs: number[];
}

/**
 * One connection's throughput and connection set-up latency (connect + 1-byte round trip) through the
 * netstack (client on n2, server on n1), against direct loopback TCP and an `ssh -L` tunnel on loopback.
 * Returns the table it prints.
 */
export async function runNetstackBench(options: NetstackBenchOptions = {}): Promise<string> {
  const bytes = options.bytes ?? 512 * 1024 * 1024;
  const runs = options.runs ?? 5;
  const connections = options.connections ?? 200;
  const rows: Row[] = [];
  const notes: string[] = [];
  const hostRun = async (args: string[]): Promise<unknown> => {
    const r = await run("python3", [TOOL, ...args]);
    if (r.status !== 0) throw new Error(`bench-tool ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  /** A path to measure: how to run the bench tool's client against it. */
  interface Path {
    readonly name: string;
    readonly port: number;
    readonly run: (args: string[]) => Promise<unknown>;
  }
  const paths: Path[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    // Every path is measured while the cluster is up (its heartbeats and servers load the machine for
    // all of them alike), and the runs go round-robin, so a noisy minute does not fall on one path.
    const cluster = await startCluster();
    cleanups.push(() => cluster.close());
    const port = 9300;
    cluster.start(["shell", "-c", `@n1 python3 ${TOOL} sink ${port}`]);
    await eventually(
      async () => {
        const r = await cluster.oneos(["ports", "--json"]);
        return r.status === 0 && (JSON.parse(r.stdout) as { port: number }[]).some((p) => p.port === port);
      },
      15_000,
      "the sink's port in the registry",
    );

    // Direct loopback TCP on the host.
    const directPort = await freePort();
    const sink = spawn("python3", [TOOL, "sink", String(directPort)], { stdio: "ignore" });
    cleanups.push(() => void sink.kill("SIGTERM"));
    await waitForPort(directPort, 10_000);
    paths.push({ name: "direct loopback TCP", port: directPort, run: hostRun });

    const sshd = await startLoopbackSshd();
    if ("skipped" in sshd) notes.push(`ssh -L: skipped (${sshd.skipped})`);
    else {
      cleanups.push(() => sshd.close());
      const local = await freePort();
      const ssh = spawn("ssh", [...sshd.sshArgs.slice(0, -3), "-N", "-L", `127.0.0.1:${local}:127.0.0.1:${directPort}`, ...sshd.sshArgs.slice(-3)], { stdio: "ignore" });
      cleanups.push(() => void ssh.kill("SIGTERM"));
      await waitForPort(local, 10_000);
      paths.push({ name: "ssh -L tunnel (loopback)", port: local, run: hostRun });
    }

    paths.push({
      name: "netstack n2 → n1",
      port,
      run: async (args) => {
        const r = await cluster.oneos(["shell", "-c", `@n2 python3 ${TOOL} ${args.join(" ")}`]);
        if (r.status !== 0) throw new Error(`netstack ${args.join(" ")}: ${r.stderr}`);
        return JSON.parse(r.stdout.trim().split("\n").pop()!);
      },
    });

    const mbps = new Map(paths.map((p) => [p.name, [] as number[]]));
    for (let i = 0; i < runs; i++) {
      for (const p of paths) mbps.get(p.name)!.push(((await p.run(["push", String(p.port), String(bytes)])) as { MBps: number }).MBps);
    }
    for (const p of paths) {
      const setupMs = ((await p.run(["setup", String(p.port), String(connections)])) as { ms: number[] }).ms;
      rows.push({ path: p.name, mbps: mbps.get(p.name)!, setupMs });
    }
  } finally {
    for (const c of cleanups.reverse()) await c();
  }

  const direct = median(rows[0]!.mbps);
  const table = renderTable(
    ["path", "MB/s (median)", "vs direct", "set-up p50 ms", "set-up p99 ms"],
    rows.map((r) => [
      r.path,
      median(r.mbps).toFixed(0),
      `${((median(r.mbps) / direct) * 100).toFixed(1)}%`,
      percentile(r.setupMs, 50).toFixed(2),
      percentile(r.setupMs, 99).toFixed(2),
    ]),
  );
  return (
    `netstack — one TCP connection, ${(bytes / 2 ** 20).toFixed(0)} MiB × ${runs} runs; set-up = connect + 1-byte round trip, ${connections} connections\n` +
    table + "\n" +
    notes.map((n) => `note: ${n}\n`).join("")
  );
}
