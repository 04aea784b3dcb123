import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KernelClient, KernelError, loadCredentials, type NatsCredentials, type NodeRecord, type NodeState } from "../pseudokernel/index.js";
import { reapChildren } from "../runtime/index.js";
import { readAgentPid } from "./home.js";
import { clusterDir, credentialsDir, isAlive, liveClusterUrl, natsUrl, readClusterState, writeClusterState, type LocalClusterState, type LocalNodeState } from "./cluster-state.js";
import { credentialsFile, ensureClusterCredentials, nodeIdentity, type NatsSecurity } from "./cluster-credentials.js";
import { planNatsCluster } from "./nats-cluster-plan.js";
import { startNatsServer, waitForPort, writeNatsServerConfig } from "./nats-server.js";

/** A fresh 3-server JetStream cluster elects its leader and the runtimes join within this. */
const READY_TIMEOUT_MS = 90_000;
/** A runtime asked to stop gets this long before SIGKILL. */
const STOP_TIMEOUT_MS = 8000;

/** The CLI that runs a runtime: next to us when compiled; from the build when run from source (tests). */
const CLI_PATH = ((): string => {
  const sibling = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  return existsSync(sibling) ? sibling : fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
})();

export interface NodeStatus {
  readonly name: string;
  readonly state: NodeState | "stopped";
  readonly nats: string;
  readonly pid: number | null;
  readonly mount: string | null;
  readonly natsPid: number | null;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * The local test cluster: N nats-servers joined by routes (JetStream on) and one runtime per server,
 * all detached, their pids and ports kept in `$ONEOS_HOME/cluster/state.json`.
 */
export class LocalCluster {
  readonly home: string;

  constructor(home: string) {
    this.home = home;
  }

  /** Where the cluster's CA, server certificate and identities' credentials files live (mode 0700). */
  get credentialsDir(): string {
    return credentialsDir(this.home);
  }

  /** The credentials file of `identity` (`admin`, `shell`, `desktop`, `node-n1`, ...). */
  credentialsFile(identity: string): string {
    return credentialsFile(this.credentialsDir, identity);
  }

  /** The admin identity: the launcher's own connections (readiness, status) use it. */
  async #adminCredentials(): Promise<NatsCredentials> {
    return await loadCredentials(this.credentialsFile("admin"));
  }

  /** Makes what is missing of the credentials (first start, or a new node) and returns the servers' security. */
  async #security(state: LocalClusterState): Promise<NatsSecurity> {
    return await ensureClusterCredentials(this.credentialsDir, state.nodes.map((n) => n.name));
  }

  /**
   * Lets node `name` join the running cluster (`oneos node` on this machine): makes its credentials if
   * missing, and has every live nats-server admit its key (config rewritten, reloaded with SIGHUP).
   * Returns its credentials file. Only who can write ONEOS_HOME can do this: the cluster's owner.
   */
  async admitNode(name: string): Promise<string> {
    const state = await this.#requireState();
    const before = await ensureClusterCredentials(this.credentialsDir, state.nodes.map((n) => n.name));
    const identity = nodeIdentity(name);
    if (!before.users.some((u) => u.identity === identity)) {
      const security = await ensureClusterCredentials(this.credentialsDir, [...state.nodes.map((n) => n.name), name]);
      for (const node of state.nodes) {
        await writeNatsServerConfig(node.nats, security);
        if (isAlive(node.natsPid)) process.kill(node.natsPid!, "SIGHUP");
      }
      // A reload takes milliseconds; connecting before it lands is refused once and retried by the caller.
      await new Promise((r) => setTimeout(r, 300));
    }
    return this.credentialsFile(identity);
  }

  /** Whether `url` is one of this cluster's NATS servers. */
  async owns(url: string): Promise<boolean> {
    const state = await this.state();
    return state?.nodes.some((n) => natsUrl(n) === url) ?? false;
  }

  async state(): Promise<LocalClusterState | null> {
    return await readClusterState(this.home);
  }

  async isRunning(): Promise<boolean> {
    const state = await this.state();
    return state !== null && state.nodes.some((n) => isAlive(n.runtimePid) || isAlive(n.natsPid));
  }

  /** Starts the cluster detached; resolves when every node is ready. */
  async up(options: { nodes?: number; log?: (line: string) => void } = {}): Promise<LocalClusterState> {
    const log = options.log ?? (() => undefined);
    if (await this.isRunning()) throw new KernelError("EINVAL", `a cluster is already running in ${this.home} (oneos cluster down first)`);
    const count = options.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1 || count > 16) throw new KernelError("EINVAL", "--nodes must be 1..16");
    const dir = clusterDir(this.home);
    const previous = await this.state();
    if (previous !== null && previous.nodes.length !== count) {
      // A new shape starts from empty state, but the credentials stay: machines may hold copies.
      for (const entry of await readdir(dir)) {
        if (join(dir, entry) !== this.credentialsDir) await rm(join(dir, entry), { recursive: true, force: true });
      }
    }
    await mkdir(dir, { recursive: true });
    const names = Array.from({ length: count }, (_, i) => `n${i + 1}`);
    const specs = await planNatsCluster(dir, names);
    const state: LocalClusterState = {
      version: 1,
      replicas: count >= 3 ? 3 : 1,
      nodes: names.map((name, i) => ({ name, dir: join(dir, name), nats: specs[i]!, natsPid: null, runtimePid: null })),
    };
    try {
      const security = await this.#security(state);
      log(`starting ${count} nats-server(s)`);
      // The state is written after each start: should a later one fail, `down` stops the earlier ones.
      for (const node of state.nodes) {
        node.natsPid = await this.#startNats(node, security);
        await writeClusterState(this.home, state);
      }
      await Promise.all(state.nodes.map((n) => waitForPort(n.nats.clientPort)));
      log(`starting ${count} runtime(s)`);
      for (const node of state.nodes) {
        node.runtimePid = await this.#startRuntime(node, state.replicas);
        await writeClusterState(this.home, state);
      }
      await this.#waitReady(state, names);
      log("cluster ready");
      return state;
    } catch (error) {
      await this.down().catch(() => undefined);
      throw error;
    }
  }

  async #startNats(node: LocalNodeState, security: NatsSecurity): Promise<number> {
    const child = await startNatsServer(node.nats, { detached: true, security });
    return child.pid ?? 0;
  }

  async #startRuntime(node: LocalNodeState, replicas: number): Promise<number> {
    await mkdir(node.dir, { recursive: true });
    const log = await open(join(node.dir, "runtime.log"), "a");
    try {
      const child = spawn(
        process.execPath,
        [CLI_PATH, "node", "--nats", natsUrl(node), "--name", node.name, "--state-dir", join(node.dir, "runtime"), "--replicas", String(replicas), "--cloudfs", "required", "--hostname", node.name, "--creds", this.credentialsFile(nodeIdentity(node.name))],
        {
          detached: true,
          stdio: ["ignore", log.fd, log.fd],
          // libuv's worker threads run the runtime's namespaced spawns, opens as a user and file-system
          // calls, all of which may wait on CloudFS: more than the default 4, so a few stalled ones do
          // not hold up the rest.
          env: { ...process.env, ONEOS_HOME: this.home, UV_THREADPOOL_SIZE: process.env["UV_THREADPOOL_SIZE"] ?? "16" },
        },
      );
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      child.unref();
      return child.pid ?? 0;
    } finally {
      await log.close();
    }
  }

  async #waitReady(state: LocalClusterState, names: readonly string[]): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const first = state.nodes.find((n) => names.includes(n.name)) ?? state.nodes[0]!;
    const kernel = await KernelClient.connect(natsUrl(first), {
      name: "oneos-cluster",
      timeoutMs: READY_TIMEOUT_MS,
      credentials: await this.#adminCredentials(),
    });
    try {
      for (;;) {
        const ready = new Set((await kernel.nodes().catch(() => [])).filter((n) => n.effective === "ready").map((n) => n.name));
        if (names.every((n) => ready.has(n))) return;
        for (const node of state.nodes) {
          if (names.includes(node.name) && !isAlive(node.runtimePid)) {
            throw new KernelError("EIO", `runtime ${node.name} exited during start; see ${join(node.dir, "runtime.log")}`);
          }
        }
        if (Date.now() > deadline) {
          throw new KernelError("ETIMEDOUT", `nodes not ready after ${READY_TIMEOUT_MS / 1000} s: ${names.filter((n) => !ready.has(n)).join(", ")}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await kernel.close();
    }
  }

  /** Stops every runtime (gracefully, then hard) and every nats-server. */
  async down(options: { purge?: boolean } = {}): Promise<void> {
    // The user's agent (cli/agent.ts) keeps connections to this cluster: it goes first.
    const agent = readAgentPid(this.home);
    // (a PID file an agent killed left behind may name another process by now)
    const argv = agent === undefined ? [] : (await readFile(`/proc/${agent}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (agent !== undefined && argv.includes("agent") && argv.some((a) => a.endsWith("oneos.cjs"))) await stopPid(agent, "SIGTERM", STOP_TIMEOUT_MS);
    const state = await this.state();
    if (state !== null) {
      await Promise.all(state.nodes.map((n) => stopPid(n.runtimePid, "SIGTERM", STOP_TIMEOUT_MS)));
      for (const n of state.nodes) await reapChildren(join(n.dir, "runtime", "children.json"));
      await Promise.all(state.nodes.map((n) => stopPid(n.natsPid, "SIGTERM", STOP_TIMEOUT_MS)));
      for (const n of state.nodes) {
        n.runtimePid = null;
        n.natsPid = null;
        await unmountStale(join(n.dir, "runtime", "mnt"));
        await unmountStale(join(n.dir, "runtime", "proc"));
      }
      await writeClusterState(this.home, state);
    }
    if (options.purge === true) await rm(clusterDir(this.home), { recursive: true, force: true });
  }

  /** Hard-kills one node's runtime, its processes and its nats-server, as a machine loss would. */
  async kill(name: string): Promise<void> {
    const state = await this.#requireState();
    const node = this.#node(state, name);
    // The runtime's process group holds its CloudFS daemon and namespace holder too.
    await stopPid(node.runtimePid, "SIGKILL", 2000, { group: true });
    await reapChildren(join(node.dir, "runtime", "children.json"));
    await stopPid(node.natsPid, "SIGKILL", 2000);
    await unmountStale(join(node.dir, "runtime", "mnt"));
    await unmountStale(join(node.dir, "runtime", "proc"));
    node.runtimePid = null;
    node.natsPid = null;
    await writeClusterState(this.home, state);
  }

  /** Starts one node again (after `kill`, or to replace a running one). */
  async restart(name: string): Promise<void> {
    const state = await this.#requireState();
    const node = this.#node(state, name);
    await stopPid(node.runtimePid, "SIGTERM", STOP_TIMEOUT_MS);
    await stopPid(node.natsPid, "SIGTERM", STOP_TIMEOUT_MS);
    node.natsPid = await this.#startNats(node, await this.#security(state));
    await waitForPort(node.nats.clientPort);
    node.runtimePid = await this.#startRuntime(node, state.replicas);
    await writeClusterState(this.home, state);
    await this.#waitReady(state, [name]);
  }

  async status(): Promise<NodeStatus[]> {
    const state = await this.state();
    if (state === null) return [];
    const records = new Map<string, NodeRecord & { effective: NodeState }>();
    const reachable = state.nodes.find((n) => isAlive(n.natsPid));
    if (reachable !== undefined) {
      const credentials = await this.#adminCredentials().catch(() => undefined);
      const kernel = await KernelClient.connect(natsUrl(reachable), { name: "oneos-status", timeoutMs: 5000, credentials }).catch(() => null);
      if (kernel !== null) {
        for (const r of await kernel.nodes().catch(() => [])) records.set(r.name, r);
        await kernel.close();
      }
    }
    return state.nodes.map((n) => {
      const record = records.get(n.name);
      const alive = isAlive(n.runtimePid);
      return {
        name: n.name,
        state: !alive ? "stopped" : (record?.effective ?? "suspect"),
        nats: natsUrl(n),
        pid: alive ? n.runtimePid : null,
        mount: alive ? (record?.mount ?? null) : null,
        natsPid: isAlive(n.natsPid) ? n.natsPid : null,
        labels: record?.labels ?? {},
      };
    });
  }

  /** The NATS URL of a live node, for clients that find the local cluster by default. */
  anyUrl(): Promise<string | null> {
    return liveClusterUrl(this.home);
  }

  async #requireState(): Promise<LocalClusterState> {
    const state = await this.state();
    if (state === null) throw new KernelError("EINVAL", `no local cluster in ${this.home} (oneos cluster up first)`);
    return state;
  }

  #node(state: LocalClusterState, name: string): LocalNodeState {
    const node = state.nodes.find((n) => n.name === name);
    if (node === undefined) {
      throw new KernelError("ENONODE", `unknown node '${name}' (known: ${state.nodes.map((n) => n.name).join(", ")})`);
    }
    return node;
  }
}

/** A node killed hard leaves its FUSE mount behind ("Transport endpoint is not connected"): detach it. */
async function unmountStale(mountpoint: string): Promise<void> {
  const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
  if (!mounts.split("\n").some((line) => line.split(" ")[1] === mountpoint)) return;
  await new Promise<void>((resolve) => {
    execFile("fusermount", ["-uz", mountpoint], () => resolve());
  });
}

/** Sends `signal` (to the process group with `group`), waits up to `timeoutMs`, then SIGKILLs it. */
async function stopPid(
  pid: number | null,
  signal: NodeJS.Signals,
  timeoutMs: number,
  options: { group?: boolean } = {},
): Promise<void> {
  if (pid === null || !isAlive(pid)) return;
  try {
    process.kill(options.group === true ? -pid : pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 20));
  }
}
