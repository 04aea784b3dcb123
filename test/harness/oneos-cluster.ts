import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { LocalCluster } from "../../cluster/index.js";
import { connectNats, loadCredentials } from "../../pseudokernel/index.js";

/** The built CLI: integration tests drive oneos exactly as a user does. */
export const CLI = fileURLToPath(new URL("../../dist/cli/oneos.cjs", import.meta.url));

export interface RunResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface RunOptions {
  readonly input?: string | Buffer;
  readonly timeoutMs?: number;
  readonly env?: Record<string, string>;
}

/** A real local test cluster in its own ONEOS_HOME, started with `oneos cluster up`. One per test file. */
export interface TestCluster {
  readonly home: string;
  /** Runs `oneos ARGS...` and collects its output. */
  oneos(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** `oneos shell -c LINE`. */
  sh(line: string, options?: RunOptions): Promise<RunResult>;
  /** Starts `oneos ARGS...` without waiting; `done` resolves with its result. */
  start(args: readonly string[], options?: RunOptions): { pid: number; done: Promise<RunResult> };
  /**
   * A NATS connection to a live node as `identity` (`admin`, `shell`, `desktop`, `node-n1`, ...), with
   * that identity's credentials file from the cluster's ONEOS_HOME. The caller closes it.
   */
  connect(identity: string): Promise<NatsConnection>;
  /** The credentials file of `identity`. */
  credentialsFile(identity: string): string;
  /** `oneos cluster status --json` nodes. */
  status(): Promise<{ name: string; state: string; nats: string; pid: number | null; mount: string | null }[]>;
  close(): Promise<void>;
}

export function runProcess(command: string, args: readonly string[], options: RunOptions & { cwd?: string } = {}): { pid: number; done: Promise<RunResult> } {
  const started = performance.now();
  const child = spawn(command, args, {
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => out.push(c));
  child.stderr.on("data", (c: Buffer) => err.push(c));
  child.stdin.on("error", () => undefined);
  child.stdin.end(options.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  const done = new Promise<RunResult>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        status: code ?? 128 + (signal === "SIGKILL" ? 9 : 15),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ms: performance.now() - started,
      });
    });
  });
  return { pid: child.pid ?? 0, done };
}

/** `env`: the environment of `oneos cluster up`, which its runtimes inherit. */
export async function startTestCluster(options: { nodes?: number; env?: Record<string, string> } = {}): Promise<TestCluster> {
  const home = await mkdtemp(join(tmpdir(), "oneos-test-"));
  const env = { ONEOS_HOME: home };
  const start = (args: readonly string[], run: RunOptions = {}): { pid: number; done: Promise<RunResult> } =>
    runProcess(process.execPath, [CLI, ...args], { ...run, env: { ...env, ...run.env } });
  const oneos = (args: readonly string[], run: RunOptions = {}): Promise<RunResult> => start(args, run).done;
  const up = await oneos(["cluster", "up", "--nodes", String(options.nodes ?? 3)], { timeoutMs: 150_000, ...(options.env !== undefined ? { env: options.env } : {}) });
  if (up.status !== 0) {
    const logs = await readFile(join(home, "cluster", "n1", "runtime.log"), "utf8").catch(() => "");
    await oneos(["cluster", "down"]);
    throw new Error(`oneos cluster up failed (${up.status}): ${up.stderr}\n${logs}`);
  }
  return {
    home,
    oneos,
    start,
    sh: (line, run) => oneos(["shell", "-c", line], run),
    async connect(identity) {
      const local = new LocalCluster(home);
      const url = await local.anyUrl();
      if (url === null) throw new Error(`no live node in the cluster at ${home}`);
      return await connectNats({ servers: url, name: `test-${identity}`, credentials: await loadCredentials(local.credentialsFile(identity)) });
    },
    credentialsFile: (identity) => new LocalCluster(home).credentialsFile(identity),
    async status() {
      const r = await oneos(["cluster", "status", "--json"]);
      return (JSON.parse(r.stdout) as { nodes: Awaited<ReturnType<TestCluster["status"]>> }).nodes;
    },
    async close() {
      await oneos(["cluster", "down"], { timeoutMs: 60_000 });
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Resident set size of a process in bytes (from /proc), or 0 when it is gone. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
