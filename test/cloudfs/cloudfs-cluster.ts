import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startTestNatsCluster, type TestNatsCluster } from "../harness/nats-cluster.js";
import { mountCloudFS, type CloudFsMount } from "../../vfs-fuse/index.js";

export interface CloudFsNode {
  readonly nc: NatsConnection;
  readonly mount: CloudFsMount;
  /** The mountpoint. */
  readonly mp: string;
}

export interface CloudFsTestCluster {
  readonly nats: TestNatsCluster;
  readonly nodes: CloudFsNode[];
  readonly dir: string;
  /** Closes one node's mount and connection (idempotent). */
  closeNode(i: number): Promise<void>;
  close(): Promise<void>;
}

/** A real NATS cluster plus one CloudFS mount per server, each mount talking only to its own server. */
export async function startCloudFsCluster(
  size = 3,
  options: {
    readonly opTimeoutMs?: number;
    /** Gives node i the journal directory `<dir>/journal<i+1>` (else the mount's default). */
    readonly journal?: boolean;
    /** Strict mounts: every close waits until JetStream has stored the change. */
    readonly strict?: boolean;
    /** False: no node serves its cached blocks over direct links (peers ask over NATS). */
    readonly blockLinks?: boolean;
  } = {},
): Promise<CloudFsTestCluster> {
  const nats = await startTestNatsCluster(size);
  const dir = await mkdtemp(join(tmpdir(), "oneos-cloudfs-"));
  // Non-root users in the permission tests must reach the mountpoints.
  await chmod(dir, 0o755);
  const nodes: CloudFsNode[] = [];
  const closed = new Set<number>();
  for (let i = 0; i < size; i++) {
    // Each node talks to its own server only (no fail-over to gossiped URLs): "the node's server is gone" must mean gone.
    const nc = await connect({ servers: nats.urls[i]!, maxReconnectAttempts: -1, reconnectTimeWait: 250, ignoreClusterUpdates: true });
    const mount = await mountCloudFS({
      nc,
      mountpoint: join(dir, `n${i + 1}`),
      cacheDir: join(dir, `cache${i + 1}`),
      cacheBytes: 256 * 1024 * 1024,
      nodeId: `n${i + 1}`,
      replicas: size >= 3 ? 3 : 1,
      ...(options.opTimeoutMs !== undefined ? { opTimeoutMs: options.opTimeoutMs } : {}),
      ...(options.journal === true ? { journalDir: join(dir, `journal${i + 1}`) } : {}),
      ...(options.strict === true ? { strict: true } : {}),
      // As the runtime starts its daemon: peers read this node's cached blocks over direct links.
      ...(options.blockLinks !== false ? { dataHost: "127.0.0.1" } : {}),
    });
    nodes.push({ nc, mount, mp: mount.mountpoint });
  }
  const closeNode = async (i: number): Promise<void> => {
    if (closed.has(i)) return;
    closed.add(i);
    const n = nodes[i]!;
    await n.mount.close();
    await n.nc.close().catch(() => {});
  };
  return {
    nats,
    nodes,
    dir,
    closeNode,
    async close() {
      for (let i = 0; i < nodes.length; i++) await closeNode(i);
      await nats.close();
      // A mount left behind is a leak: fail the file rather than litter the machine.
      const left = (await readFile("/proc/self/mounts", "utf8")).split("\n").filter((l) => l.includes(dir));
      for (const l of left) await new Promise((r) => execFile("fusermount", ["-uz", l.split(" ")[1]!], r));
      await rm(dir, { recursive: true, force: true });
      if (left.length > 0) throw new Error(`mounts leaked: ${left.join("; ")}`);
    },
  };
}

/** `vfs-fuse/fs-daemon.ts`, resolved from this file so the harness works in any clone. */
const FS_DAEMON = fileURLToPath(new URL("../../vfs-fuse/fs-daemon.ts", import.meta.url));
const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface FsDaemonOptions {
  /** One server URL: the daemon talks to that server (and, as nats.js does, any it gossips). */
  readonly nats: string;
  readonly mount: string;
  readonly cache: string;
  readonly nodeId: string;
  readonly journal?: string;
  readonly strict?: boolean;
  readonly cacheBytes?: number;
  readonly replicas?: number;
}

/** CloudFS in a child process, as the runtime runs it; its mount may be used with async fs calls. */
export interface FsDaemon {
  readonly mp: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /**
   * Sends `signal` (default SIGTERM: unmount cleanly) and waits for the exit; one that has not exited
   * after `timeoutMs` is SIGKILLed and the call fails. A SIGKILLed daemon leaves its mount stale.
   */
  kill(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

/**
 * Starts `fs-daemon.ts` and waits for its `{"ready":true}` line. Callers `kill()` what they start;
 * a mount left under the cluster's directory makes `CloudFsTestCluster.close()` fail.
 */
export async function startFsDaemon(o: FsDaemonOptions, timeoutMs = 60_000): Promise<FsDaemon> {
  const args = [
    "--import", "tsx", FS_DAEMON,
    "--nats", o.nats, "--mount", o.mount, "--cache", o.cache, "--node-id", o.nodeId,
    "--replicas", String(o.replicas ?? 3),
    ...(o.journal !== undefined ? ["--journal", o.journal] : []),
    ...(o.strict === true ? ["--strict"] : []),
    ...(o.cacheBytes !== undefined ? ["--cache-bytes", String(o.cacheBytes)] : []),
  ];
  // cwd: the checkout, where `tsx` resolves (never a mount: see `sh`).
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fs-daemon ${o.nodeId} not ready within ${timeoutMs} ms`)), timeoutMs);
    lines.once("line", (l) => (clearTimeout(timer), resolve(l)));
    void exited.then(() => (clearTimeout(timer), reject(new Error(`fs-daemon ${o.nodeId} exited before ready`))));
  }).catch(async (err: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw err;
  });
  // Anything else it prints is passed on (and the pipe drained, so the daemon never blocks on it).
  lines.on("line", (l) => process.stdout.write(`[fs-daemon ${o.nodeId}] ${l}\n`));
  const parsed = JSON.parse(ready) as { ready: boolean; mount?: string; error?: string };
  if (!parsed.ready) {
    await exited;
    throw new Error(`fs-daemon ${o.nodeId} failed: ${parsed.error}`);
  }
  return {
    mp: parsed.mount ?? o.mount,
    pid: child.pid!,
    child,
    async kill(signal = "SIGTERM", timeoutMs = 90_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (!late) return;
      child.kill("SIGKILL");
      await exited;
      throw new Error(`fs-daemon ${o.nodeId} did not exit within ${timeoutMs} ms of ${signal}`);
    },
  };
}

/** Lazily unmounts a mount its dead daemon left behind ("Transport endpoint is not connected"). */
export function unmountStale(mp: string): Promise<void> {
  return new Promise((r) => execFile("fusermount", ["-uz", mp], () => r()));
}

export interface ShResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `sh -c` in a child. Never sync fs in this process (it serves the mounts), and never spawn with
 * a `cwd` inside a mount: libuv's spawn blocks the parent until the child execs, and the child's
 * chdir() waits for a FUSE answer only the blocked parent could give. So the script `cd`s itself.
 */
export function sh(
  script: string,
  options: { readonly cwd?: string; readonly uid?: number; readonly gid?: number; readonly timeoutMs?: number } = {},
): Promise<ShResult> {
  return new Promise((resolve) => {
    execFile(
      "sh",
      ["-c", options.cwd === undefined ? script : `cd '${options.cwd.replaceAll("'", "'\\''")}' && { ${script}
}`],
      {
        ...(options.uid !== undefined ? { uid: options.uid } : {}),
        ...(options.gid !== undefined ? { gid: options.gid } : {}),
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, HOME: "/tmp", GIT_CONFIG_NOSYSTEM: "1" },
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Polls `fn` until it returns true or `ms` pass. */
export async function eventually(fn: () => Promise<boolean>, ms = 2000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
