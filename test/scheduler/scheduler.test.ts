import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, eventually, runProcess, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
});

afterAll(async () => {
  await cluster?.close();
});

interface PsRow {
  pid: number;
  node: string;
  state: string;
  command: string;
}

interface NodeRow {
  name: string;
  state: string;
  procs: number;
  allocatable: { cpu: number; mem: number };
  reserved: { cpu: number; mem: number };
}

interface ServiceRow {
  name: string;
  state: string;
  node: string | null;
  pid: number | null;
  restarts: number;
  since: string | null;
}

async function ps(): Promise<PsRow[]> {
  const r = await cluster.oneos(["ps", "--json"]);
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as PsRow[];
}

async function nodes(): Promise<NodeRow[]> {
  return JSON.parse((await cluster.oneos(["nodes", "--json"])).stdout) as NodeRow[];
}

async function killAll(command: string): Promise<void> {
  const pids = (await ps()).filter((p) => p.command === command).map((p) => String(p.pid));
  if (pids.length > 0) await cluster.oneos(["kill", "-KILL", ...pids]);
}

function countByNode(rows: readonly PsRow[], command: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of rows) if (p.command === command) counts[p.node] = (counts[p.node] ?? 0) + 1;
  return counts;
}

describe("scheduler", () => {
  it("30 unprefixed background sleeps land on all 3 nodes, evenly", async () => {
    const job = cluster.start(["shell", "-c", "for i in $(seq 30); do sleep 61 & done; wait"]);
    const rows = await eventually(async () => {
      const all = await ps();
      return all.filter((p) => p.command === "sleep 61").length === 30 ? all : undefined;
    }, 30_000, "30 sleeps");
    const counts = countByNode(rows, "sleep 61");
    expect(Object.keys(counts).sort()).toEqual(["n1", "n2", "n3"]);
    for (const n of Object.values(counts)) expect(n).toBeGreaterThanOrEqual(8);
    await killAll("sleep 61");
    await job.done;
  });

  it("an impossible request fails at once with a per-node explanation; place --explain runs nothing", async () => {
    const started = Date.now();
    const r = await cluster.sh("@{cpu=64,mem=1G} true");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^oneos: no node fits @\{cpu=64,mem=1G\}:\n/);
    for (const n of ["n1", "n2", "n3"]) expect(r.stderr).toMatch(new RegExp(`  ${n}: resources: cpu 64 > [\\d.]+ free of \\d+`));
    expect(Date.now() - started).toBeLessThan(10_000);

    const impossible = await cluster.oneos(["place", "--explain", "@gpu=1 true"]);
    expect(impossible.status).toBe(1);
    expect(impossible.stdout).toContain("n2: labels: gpu=1 does not hold (no label gpu)");

    const explained = await cluster.oneos(["place", "--explain", "seq 1 3 | sort -r | @n3 head -1"]);
    expect(explained.status).toBe(0);
    expect(explained.stdout).toMatch(/\(no prefix\) seq 1 3\nany node → n\d {3}\(strategy spread\)/);
    expect(explained.stdout).toMatch(/locality 0\.500\)\s+← chosen/); // sort joins seq's node
    expect(explained.stdout).toMatch(/@n3 head -1\n@n3 → n3/);
    expect(explained.stdout).toContain("rejected by node-name: not n3");
  });

  it("a label constraint: @gpu=1 runs on the labelled node that joined live, @gpu!=1 never does", async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "oneos-n4-"));
    const url = (await cluster.status())[0]!.nats;
    const n4 = runProcess(process.execPath, [CLI, "node", "--nats", url, "--name", "n4", "--label", "gpu=1", "--cloudfs", "off", "--state-dir", stateDir], {
      env: { ONEOS_HOME: cluster.home },
      timeoutMs: 120_000,
    });
    try {
      await eventually(async () => ((await nodes()).find((n) => n.name === "n4")?.state === "ready" ? true : undefined), 30_000, "n4 ready");
      const job = cluster.start(["shell", "-c", "cd /; @gpu=1 sleep 71 & for i in 1 2 3 4 5 6; do @gpu!=1 sleep 72 & done; wait"]);
      const rows = await eventually(async () => {
        const all = await ps();
        return all.filter((p) => p.command.startsWith("sleep 7")).length === 7 ? all : undefined;
      }, 20_000, "7 sleeps");
      expect(countByNode(rows, "sleep 71")).toEqual({ n4: 1 });
      expect(countByNode(rows, "sleep 72")["n4"]).toBeUndefined();
      await killAll("sleep 71");
      await killAll("sleep 72");
      expect((await job.done).status).toBe(0);
    } finally {
      process.kill(n4.pid, "SIGTERM");
      await n4.done;
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it("two shells placing at once never over-commit: the nodes' admission control refuses, the shells re-place", async () => {
    const line = "for i in 1 2 3 4 5; do @{cpu=1} sleep 81 & done; wait";
    const a = cluster.start(["shell", "-c", line]);
    const b = cluster.start(["shell", "-c", line]);
    // 3 nodes × 2 CPUs: 6 of the 10 fit; the other 4 fail with an explanation.
    const rows = await eventually(async () => {
      const all = await ps();
      return all.filter((p) => p.command === "sleep 81").length >= 6 ? all : undefined;
    }, 30_000, "6 sleeps");
    await new Promise((r) => setTimeout(r, 2500)); // heartbeats carry the reservations
    const counts = countByNode(await ps(), "sleep 81");
    expect(Object.values(counts).reduce((x, y) => x + y, 0)).toBe(6);
    for (const n of Object.values(counts)) expect(n).toBeLessThanOrEqual(2);
    for (const n of await nodes()) {
      expect(n.reserved.cpu).toBeLessThanOrEqual(n.allocatable.cpu);
      expect(n.reserved.cpu).toBe(counts[n.name] ?? 0);
    }
    expect(rows.length).toBeGreaterThan(0);
    await killAll("sleep 81");
    const [ra, rb] = await Promise.all([a.done, b.done]);
    // Refused by the placer (no node fits) or, after the re-placements, by a node's admission control.
    const refusals = `${ra.stderr}${rb.stderr}`.match(/no node fits @\{cpu=1\}|resources: asked cpu=1/g) ?? [];
    expect(refusals).toHaveLength(4);
    // Released on exit.
    await eventually(async () => ((await nodes()).every((n) => n.reserved.cpu === 0) ? true : undefined), 10_000, "reservations released");
  });

  it("oneos top prints nodes with reservations and the busiest processes", async () => {
    const job = cluster.start(["shell", "-c", "@n2{cpu=0.5} sh -c 'while :; do :; done'"]);
    const frame = await eventually(async () => {
      const r = await cluster.oneos(["top", "-n", "1"]);
      return /n2\s+\d+\.\d+\s+sh -c while/.test(r.stdout) || /sh -c while/.test(r.stdout) ? r.stdout : undefined;
    }, 15_000, "the busy loop in top");
    expect(frame).toMatch(/NODE\s+STATE\s+LOAD\s+CPUS\s+MEM USED\/TOTAL \(GiB\)\s+PROCS\s+RESERVED CPU\s+RESERVED MEM/);
    expect(frame).toMatch(/n2\s+ready\s+[\d.]+\s+\d+\s+[\d./]+\s+1\s+0\.5\/\d+/);
    expect(frame).toMatch(/PID\s+NODE\s+%CPU\s+RSS\s+USER\s+STATE\s+COMMAND/);
    await killAll("sh -c while :; do :; done");
    await job.done;
  });

  it("a service comes back on another node within 10 s after its node is killed, with its restart count", async () => {
    const run = await cluster.oneos(["run", "--name", "web", "--restart", "always", "--", "sleep", "1000"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^web running on n\d as pid \d+\n$/);
    const services = async (): Promise<ServiceRow[]> => JSON.parse((await cluster.oneos(["services", "--json"])).stdout) as ServiceRow[];
    const before = (await services())[0]!;
    expect(before).toMatchObject({ name: "web", state: "running", restarts: 0 });
    const listed = await cluster.oneos(["services"]);
    expect(listed.stdout).toMatch(/NAME\s+STATE\s+NODE\s+PID\s+RESTARTS\s+POLICY\s+PLACEMENT\s+COMMAND\nweb\s+running\s+n\d\s+\d+\s+0\s+always\s+-\s+sleep 1000/);

    const killedAt = Date.now();
    const kill = await cluster.oneos(["cluster", "kill", before.node!]);
    expect(kill.stderr).toBe("");
    expect(kill.status).toBe(0);
    const after = await eventually(async () => {
      const s = (await services().catch(() => []))[0];
      return s !== undefined && s.state === "running" && s.node !== before.node ? s : undefined;
    }, 30_000, "the service on another node");
    expect(after.restarts).toBe(1);
    expect(Date.parse(after.since!) - killedAt).toBeLessThan(10_000);
    // The process table follows once the new process's record is written (a JetStream election may delay it).
    const row = await eventually(async () => (await ps()).find((p) => p.pid === after.pid), 15_000, "the new process in ps");
    expect(row.command).toBe("sleep 1000");

    expect((await cluster.oneos(["services", "rm", "web"])).status).toBe(0);
    await eventually(async () => ((await services()).length === 0 ? true : undefined), 30_000, "the service removed");
    await eventually(async () => ((await ps()).some((p) => p.pid === after.pid) ? undefined : true), 10_000, "its process stopped");
  });
});
