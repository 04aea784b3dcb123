import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { CLUSTER_VIEW_SUBJECT, decode, encode, heartbeatSubject, newStreamId, nodeSubject } from "../../pseudokernel/index.js";
import { eventually, rssBytes, startTestCluster, type RunResult, type TestCluster } from "../harness/oneos-cluster.js";
import { Rng } from "./fuzz-payloads.js";
import { barrier, buildTargets, flood, newFigures, NODES, rootSession, VERBS, withSession } from "./fuzz-targets.js";

/**
 * Hostile input on every subject a runtime (or a shell) listens on: ≥ 100,000 random, mutated and
 * hostile-valued payloads, by request and by plain publish. Afterwards every runtime must be the same
 * process, its log free of crashes, its memory bounded, and the cluster must still work end to end.
 */

const TOTAL = Number(process.env["FUZZ_PAYLOADS"] ?? 105_000);
const SEED = Number(process.env["FUZZ_SEED"] ?? Date.now() % 2 ** 31);
/** Payloads near the 4 MiB max_payload: few, they cost 4 MiB per subscriber each. */
const NEAR_MAX_PAYLOADS = 6;
const MAX_PAYLOAD = 4 * 1024 * 1024;
const HTTP_PORT = 8765;
const LOGS = join(tmpdir(), `oneos-fuzz-logs-${SEED}`);
/** What a runtime's log must never show: Node's report of an uncaught exception, nats.js's dead read loop. */
const CRASH_MARKS = [/uncaught/i, /unhandled/i, /reader closed/, /FATAL ERROR/, /^\s+at .*\(node:internal/m, /Maximum call stack/, /heap out of memory/];

let cluster: TestCluster;
let scratch: string;

const background: Promise<RunResult>[] = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  scratch = await mkdtemp(join(tmpdir(), "oneos-fuzz-"));
});

/** A failed test keeps the runtimes' logs: the cluster's home goes with the cluster. */
async function keepLogs(): Promise<void> {
  await mkdir(LOGS, { recursive: true });
  for (const node of NODES) await cp(join(cluster.home, "cluster", node, "runtime.log"), join(LOGS, `${node}.log`)).catch(() => undefined);
  console.log(`runtime logs kept in ${LOGS}`);
}

afterAll(async () => {
  await cluster?.close();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

async function ps(): Promise<{ pid: number; node: string; command: string; state: string }[]> {
  const r = await cluster.oneos(["ps", "--json"]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { pid: number; node: string; command: string; state: string }[];
}

describe("hostile input on every kernel subject", () => {
  it(`${TOTAL} random, mutated and hostile payloads crash, wedge or bloat no runtime; the cluster works after`, async () => {
    onTestFailed(keepLogs);
    const nodesBefore = await cluster.status();
    expect(nodesBefore.map((n) => n.name)).toEqual([...NODES]);
    const runtimePids = Object.fromEntries(nodesBefore.map((n) => [n.name, n.pid ?? 0]));
    for (const pid of Object.values(runtimePids)) expect(pid).toBeGreaterThan(0);

    // Things to aim at: a registered shell (its signal subject), a server whose port the netstack
    // carries (connect requests with hostile stream ids reach its path), live streams (below).
    background.push(cluster.start(["shell", "-c", "@n3 sleep 600"]).done);
    background.push(cluster.start(["shell", "-c", `@n2 python3 -m http.server ${HTTP_PORT} --bind 127.0.0.1`]).done);
    const listed = await eventually(async () => {
      const r = await cluster.oneos(["ports", "--json"]);
      return (JSON.parse(r.stdout || "[]") as { port: number }[]).some((p) => p.port === HTTP_PORT) ? true : undefined;
    }, 20_000, `port ${HTTP_PORT} in the registry`);
    expect(listed).toBe(true);
    const procs = await eventually(async () => {
      const rows = await ps();
      return rows.some((p) => p.command.startsWith("sleep 600")) && rows.some((p) => p.command.startsWith("oneos shell")) ? rows : undefined;
    }, 20_000, "the sleeper and its shell in ps");
    const pids = procs.map((p) => p.pid);
    const shellPids = procs.filter((p) => p.command.startsWith("oneos shell")).map((p) => p.pid);

    const rssBefore = Object.fromEntries(await Promise.all(nodesBefore.map(async (n) => [n.name, await rssBytes(n.pid ?? 0)] as const)));

    const nc = await cluster.connect("admin");
    const session = await rootSession(nc);
    // Live stream ids: the runtimes hold a writer (file read) and a reader (file write) on each.
    const liveIds: string[] = [];
    const openLive = async (): Promise<void> => {
      for (const node of NODES) {
        for (const mode of ["r", "w"] as const) {
          const id = newStreamId();
          liveIds.push(id);
          const path = mode === "r" ? "/etc/services" : `${scratch}/live-${id}`;
          await nc.request(nodeSubject(node, "open"), encode({ type: "open", path, mode, stream: id, notify: "_INBOX.fuzz.closed" }), { timeout: 5000, ...withSession(session) });
        }
      }
      if (liveIds.length > 60) liveIds.splice(0, liveIds.length - 60);
    };
    await openLive();

    const targets = buildTargets({ scratch, pids, shellPids, liveIds, httpPort: HTTP_PORT, session });

    console.log(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);
    const rng = new Rng(SEED);
    const figures = newFigures(SEED);
    figures.rssBefore = rssBefore;
    const started = performance.now();

    // A few payloads near the 4 MiB limit first, where every runtime subscribes (heartbeats) or answers.
    for (let i = 0; i < NEAR_MAX_PAYLOADS; i++) {
      const bytes = rng.bytes(MAX_PAYLOAD - 1024 - rng.int(4096));
      const subject = i % 2 === 0 ? heartbeatSubject(rng.pick(NODES)) : nodeSubject(rng.pick(NODES), rng.pick(VERBS));
      nc.publish(subject, bytes);
      figures.nearMaxPayloads++;
      figures.payloads++;
      figures.published++;
      await barrier(nc);
    }

    // The flood, in slices so the live streams are renewed before they time out (20 s without a peer).
    const slices = 8;
    const adminShare = Math.ceil((TOTAL * 0.85) / slices);
    for (let s = 0; s < slices; s++) {
      await flood(nc, targets, adminShare, rng, figures, "admin", session);
      await openLive();
    }

    // The shell identity: what it may publish, it may publish badly; what it may not, is refused by
    // the server without harm to anyone.
    const shellNc = await cluster.connect("shell");
    const shellTargets = targets.filter((t) => !t.label.startsWith("heartbeat"));
    await flood(shellNc, shellTargets, TOTAL - figures.payloads, rng, figures, "shell", session);
    await shellNc.close();

    figures.wallMs = Math.round(performance.now() - started);
    figures.subjects = Object.keys(figures.perSubject).length;

    // Every runtime: the same process, alive, answering.
    const nodesAfter = await cluster.status();
    for (const n of nodesAfter) {
      expect(n.pid, `${n.name} runtime pid`).toBe(runtimePids[n.name]);
      expect(n.state, `${n.name} state`).toBe("ready");
      expect(() => process.kill(n.pid ?? 0, 0), `${n.name} runtime alive`).not.toThrow();
    }
    // Settle: registrations (10 s lease) and most of the flood's dead streams (20 s connect timeout) run out.
    await new Promise((r) => setTimeout(r, 15_000));
    figures.rssAfter = Object.fromEntries(await Promise.all(nodesAfter.map(async (n) => [n.name, await rssBytes(n.pid ?? 0)] as const)));
    console.log(`FUZZ ${JSON.stringify(figures)}`);

    expect(figures.payloads).toBeGreaterThanOrEqual(100_000);
    // Every kind of answer must have happened, or the flood did not reach the handlers.
    expect(figures.errorReplies).toBeGreaterThan(1000);
    for (const node of NODES) {
      const log = await readFile(join(cluster.home, "cluster", node, "runtime.log"), "utf8");
      for (const mark of CRASH_MARKS) expect(log, `${node} runtime.log`).not.toMatch(mark);
    }
    for (const node of NODES) {
      // Bounded growth: 100k messages must not leave their garbage behind (heap, subscriptions, timers).
      expect(figures.rssAfter[node]! - rssBefore[node]!, `${node} RSS growth`).toBeLessThan(150 * 1024 * 1024);
    }

    // Still one working cluster: pipelines across nodes, CloudFS across nodes, ps, the netstack.
    const sorted = await cluster.sh("seq 1 1000 | @n2 sort -rn | @n3 head -1");
    expect(sorted.stdout, sorted.stderr).toBe("1000\n");
    const write = await cluster.sh("@n1 echo fuzz-survived > /home/root/fuzz.txt");
    expect(write.status, write.stderr).toBe(0);
    const read = await cluster.sh("@n3 cat /home/root/fuzz.txt");
    expect(read.stdout, read.stderr).toBe("fuzz-survived\n");
    const rows = await ps();
    expect(rows.some((p) => p.command.startsWith("sleep 600"))).toBe(true);
    const curl = await cluster.sh(`@n1 curl -sS -m 10 http://localhost:${HTTP_PORT}/`);
    const ports = await cluster.oneos(["ports"]);
    expect(curl.stdout, `curl: ${curl.status} ${curl.stderr}\nports:\n${ports.stdout}\nps:\n${JSON.stringify(rows)}`).toContain("Directory listing");
    const nodes = JSON.parse((await cluster.oneos(["nodes", "--json"])).stdout) as { name: string; state: string }[];
    // Made-up nodes from hostile heartbeats never joined the table.
    expect(nodes.map((n) => `${n.name}:${n.state}`).sort()).toEqual(["n1:ready", "n2:ready", "n3:ready"]);
    await nc.close();
  }, 400_000);

  it("a node thought lost for a few seconds (a heartbeat stamped ahead) gets its ports back in the registry", async () => {
    onTestFailed(keepLogs);
    const nc = await cluster.connect("admin");
    try {
      const view = decode((await nc.request(CLUSTER_VIEW_SUBJECT, encode({ type: "view" }), { timeout: 5000 })).data) as { nodes: Record<string, unknown>[] };
      const { effective: _, ...n2 } = view.nodes.find((n) => n["name"] === "n2")!;
      // n2's real beats look older than this one until it is 8 s old: n2 goes silent, the leader marks it
      // lost and deletes its ports; then its beats count again.
      nc.publish(heartbeatSubject("n2"), encode({ ...n2, heartbeat: Date.now() + 8000 }));
      await nc.flush();
      const state = async (): Promise<string | undefined> =>
        (JSON.parse((await cluster.oneos(["nodes", "--json"])).stdout) as { name: string; state: string }[]).find((n) => n.name === "n2")?.state;
      await eventually(async () => ((await state()) === "down" ? true : undefined), 20_000, "n2 to be thought lost");
      await eventually(async () => ((await state()) === "ready" ? true : undefined), 30_000, "n2 to be back");
      const back = await eventually(async () => {
        const r = await cluster.sh(`@n1 curl -sS -m 5 http://localhost:${HTTP_PORT}/`);
        return r.stdout.includes("Directory listing") ? r : undefined;
      }, 15_000, `port ${HTTP_PORT} of n2 reachable from n1 again`);
      expect(back.status).toBe(0);
    } finally {
      await nc.close();
    }
  }, 120_000);
});
