import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, eventually, runProcess, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

interface PsRow {
  pid: number;
  ppid: number;
  node: string;
  user: string;
  state: string;
  command: string;
}

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
});

afterAll(async () => {
  const agent = Number(await readFile(join(cluster.home, "agent.pid"), "utf8").catch(() => "0"));
  await cluster?.close();
  // `oneos cluster down` stops the user's agent too.
  if (agent > 0) expect(existsSync(`/proc/${agent}`)).toBe(false);
});

async function ps(all = false): Promise<PsRow[]> {
  const r = await cluster.oneos(["ps", "--json", ...(all ? ["-a"] : [])]);
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as PsRow[];
}

async function findProcess(command: string): Promise<PsRow> {
  return await eventually(async () => (await ps()).find((p) => p.command === command), 10_000, command);
}

describe("process table", () => {
  it("oneos nodes --json lists every node ready with labels, load and memory", async () => {
    const r = await cluster.oneos(["nodes", "--json"]);
    const nodes = JSON.parse(r.stdout) as { name: string; state: string; labels: object; load: number; memFree: number }[];
    expect(nodes.map((n) => [n.name, n.state])).toEqual([
      ["n1", "ready"],
      ["n2", "ready"],
      ["n3", "ready"],
    ]);
    for (const n of nodes) {
      expect(n.labels).toEqual({});
      expect(typeof n.load).toBe("number");
      expect(n.memFree).toBeGreaterThan(0);
    }
  });

  it("the oneos command runs from its one-file bundle with a code cache per verb, and agrees with main.js", async () => {
    const dist = dirname(CLI);
    expect(existsSync(join(dist, "oneos-bundle.cjs"))).toBe(true);
    const viaBundle = await cluster.oneos(["nodes", "--json"]);
    expect(viaBundle.status).toBe(0);
    // A verb's cache is written when its first successful run exits.
    const caches = (await readdir(dist)).filter((f) => f.startsWith("oneos-bundle.cjs.") && f.endsWith(".nodes.cache"));
    expect(caches).toHaveLength(1);
    const names = (r: { stdout: string }): string[] => (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
    const viaModules = await runProcess(process.execPath, [join(dist, "main.js"), "nodes", "--json"], { env: { ONEOS_HOME: cluster.home } }).done;
    expect(viaModules.status).toBe(0);
    expect(names(viaModules)).toEqual(names(viaBundle));
    // From the bundle, the shell's parser and what a module loads from beside itself (the pipe addon) are found.
    const r = await cluster.sh("@n2 hostname | tr a-z A-Z");
    expect(r.stdout).toBe("N2\n");
  });

  it("after its first call, ps, nodes and shell -c go to the user's agent, which answers as the command's own process would", async () => {
    // An earlier call of this file ran in its own process and started the agent.
    await eventually(async () => (existsSync(join(cluster.home, "agent.sock")) ? true : undefined), 15_000, "the agent's socket");
    const agent = Number(await readFile(join(cluster.home, "agent.pid"), "utf8"));
    const names = (r: { stdout: string }): string[] => (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
    const own = await cluster.oneos(["nodes", "--json"], { env: { ONEOS_NO_AGENT: "1" } });
    // The agent is the one that answers: stopped, it holds the call back.
    process.kill(agent, "SIGSTOP");
    const held = cluster.oneos(["nodes", "--json"]);
    const settled = await Promise.race([held.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1500))]);
    process.kill(agent, "SIGCONT");
    expect(settled).toBe(false);
    const via = await held;
    expect(via.status).toBe(0);
    expect(names(via)).toEqual(names(own));
    expect((await cluster.oneos(["ps", "--json"])).status).toBe(0);
    // Exit status, stderr, stdin (to the shell and to a command on another node), usage errors.
    expect((await cluster.sh("exit 7")).status).toBe(7);
    const failed = await cluster.sh("echo oops >&2; false");
    expect([failed.status, failed.stderr]).toEqual([1, "oops\n"]);
    expect((await cluster.sh("tr a-z A-Z", { input: "hello\n" })).stdout).toBe("HELLO\n");
    expect((await cluster.sh("@n2 cat | wc -l", { input: "a\nb\nc\n" })).stdout.trim()).toBe("3");
    expect((await cluster.oneos(["ps", "--no-such-option"])).status).toBe(2);
    // A signal to the command ends its shell as it would end the command: 128 + n.
    const job = cluster.start(["shell", "-c", "@n2 sleep 77"]);
    const sleeper = await findProcess("sleep 77");
    process.kill(job.pid, "SIGTERM");
    expect((await job.done).status).toBe(143);
    await cluster.oneos(["kill", "-KILL", String(sleeper.pid)]);
    // A shell killed through the process table ends its command too.
    const other = cluster.start(["shell", "-c", "@n3 sleep 78"]);
    const child = await findProcess("sleep 78");
    expect((await cluster.oneos(["kill", "-KILL", String(child.ppid)])).status).toBe(0);
    expect((await other.done).status).toBe(137);
    await cluster.oneos(["kill", "-KILL", String(child.pid)]);
    expect(existsSync(`/proc/${agent}`)).toBe(true);
  });

  it("oneos cluster status --json gives name, state, nats, pid and mount", async () => {
    const nodes = await cluster.status();
    expect(nodes).toHaveLength(3);
    for (const n of nodes) {
      expect(n.state).toBe("ready");
      expect(n.nats).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      expect(n.pid).toBeGreaterThan(1);
      expect("mount" in n).toBe(true);
    }
  });

  it("shows a running process with its node, user and command; unique cluster PIDs", async () => {
    const job = cluster.start(["shell", "-c", "@n2 sleep 101 & @n3 sleep 102 & wait"]);
    const a = await findProcess("sleep 101");
    const b = await findProcess("sleep 102");
    expect(a.node).toBe("n2");
    expect(b.node).toBe("n3");
    expect(a.state).toBe("running");
    expect(a.pid).not.toBe(b.pid);
    expect(a.user.length).toBeGreaterThan(0);
    const text = await cluster.oneos(["ps"]);
    expect(text.stdout).toMatch(/PID\s+PPID\s+NODE\s+USER\s+STATE\s+STIME\s+CMD/);
    expect(text.stdout).toContain("sleep 101");
    await cluster.oneos(["kill", "-KILL", String(a.pid), String(b.pid)]);
    const r = await job.done;
    expect(r.status).toBe(0); // `wait` with no operands returns 0
  });

  it("kill from another node reaches the process; the waiting shell sees 128+n", async () => {
    const job = cluster.start(["shell", "-c", "@n3 sleep 200"]);
    const p = await findProcess("sleep 200");
    const k = await cluster.oneos(["kill", "-INT", String(p.pid)]);
    expect(k.status).toBe(0);
    const r = await job.done;
    expect(r.status).toBe(130);
    const after = (await ps(true)).find((x) => x.pid === p.pid);
    expect(after?.state).toBe("killed");
  });

  it("STOP and CONT change the state; TERM ends it with 143", async () => {
    const job = cluster.start(["shell", "-c", "@n2 sleep 300"]);
    const p = await findProcess("sleep 300");
    await cluster.oneos(["kill", "-STOP", String(p.pid)]);
    await eventually(async () => ((await ps()).find((x) => x.pid === p.pid)?.state === "stopped" ? true : undefined), 5000, "stopped");
    await cluster.oneos(["kill", "-CONT", String(p.pid)]);
    await eventually(async () => ((await ps()).find((x) => x.pid === p.pid)?.state === "running" ? true : undefined), 5000, "running");
    await cluster.oneos(["kill", String(p.pid)]);
    expect((await job.done).status).toBe(143);
  });

  it("the shell is a cluster process: $$ is its PID and the PPID of what it starts", async () => {
    const job = cluster.start(["shell", "-c", "echo $$; @n2 sleep 103"]);
    const child = await findProcess("sleep 103");
    const rows = await ps();
    const shell = rows.find((p) => p.pid === child.ppid);
    expect(shell?.command).toBe("oneos shell -c");
    expect(shell?.state).toBe("running");
    await cluster.oneos(["kill", String(child.pid)]);
    const r = await job.done;
    expect(r.stdout.trim()).toBe(String(child.ppid));
    const after = (await ps(true)).find((p) => p.pid === child.ppid);
    expect(after?.state).toBe("exited");
  });

  it("oneos kill of a shell's PID ends that shell", async () => {
    const job = cluster.start(["shell", "-c", "@n3 sleep 104"]);
    const child = await findProcess("sleep 104");
    expect((await cluster.oneos(["kill", String(child.ppid)])).status).toBe(0);
    expect((await job.done).status).toBe(143);
    await cluster.oneos(["kill", "-KILL", String(child.pid)]);
  });

  it("a node joins with `oneos node --label`, and @key=value places on it", async () => {
    const n1 = (await cluster.status()).find((n) => n.name === "n1")!;
    const joined = cluster.start(["node", "--nats", n1.nats, "--name", "gpu1", "--label", "gpu=1", "--cloudfs", "off", "--state-dir", `${cluster.home}/gpu1`]);
    try {
      await eventually(async () => {
        const nodes = JSON.parse((await cluster.oneos(["nodes", "--json"])).stdout) as { name: string; state: string; labels: Record<string, string> }[];
        const gpu = nodes.find((n) => n.name === "gpu1");
        return gpu?.state === "ready" && gpu.labels["gpu"] === "1" ? true : undefined;
      }, 20_000, "gpu1 ready");
      const r = await cluster.sh("cd /tmp; @gpu=1 sh -c 'echo placed'; @gpu=2 true");
      expect(r.stdout).toBe("placed\n");
      expect(r.stderr).toMatch(/gpu=2/);
      const placed = (await ps(true)).filter((p) => p.command === "sh -c echo placed");
      expect(placed.at(-1)?.node).toBe("gpu1");
    } finally {
      process.kill(joined.pid, "SIGTERM");
      await joined.done;
    }
  });

  it("a second cluster with another ONEOS_HOME runs side by side without clashing", async () => {
    const other = await startTestCluster({ nodes: 1 });
    try {
      const mine = await cluster.status();
      const theirs = await other.status();
      expect(theirs.map((n) => n.nats)).not.toContain(mine[0]!.nats);
      expect((await other.sh("@n1 echo other")).stdout).toBe("other\n");
      expect((await cluster.sh("@n3 echo mine")).stdout).toBe("mine\n");
    } finally {
      await other.close();
    }
    expect((await cluster.sh("@n2 echo still")).stdout).toBe("still\n");
  });

  it("oneos logs prints a process's last output while it runs and after it ended; -f follows it", async () => {
    const script = "for i in $(seq 1 6); do echo out $i; echo err $i >&2; sleep 0.3; done";
    const job = cluster.start(["shell", "-c", `@n3 sh -c '${script}' 2>&1 | tr a-z A-Z`]);
    const p = await findProcess(`sh -c ${script}`);
    const follow = await cluster.oneos(["logs", "-f", String(p.pid)]);
    expect(follow.status, follow.stderr).toBe(0);
    const lines = follow.stdout.trim().split("\n");
    // Every line once, in order: what -f printed first and what it printed later join up.
    expect(lines).toEqual(Array.from({ length: 6 }, (_, i) => [`out ${i + 1}`, `err ${i + 1}`]).flat());
    expect((await job.done).stdout).toContain("OUT 6\nERR 6");
    const after = await cluster.oneos(["logs", String(p.pid)]);
    expect(after.stdout).toBe(follow.stdout);
    const none = await cluster.oneos(["logs", "999999"]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/No such process/);
  });

  it("kill of a PID that does not exist fails with a clear message", async () => {
    const r = await cluster.oneos(["kill", "999999"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/No such process/);
  });

  it("the shell's own kill builtin reaches a remote background job", async () => {
    const r = await cluster.sh("@n2 sleep 400 & kill %1; wait %1; echo $?", { timeoutMs: 20_000 });
    expect(r.stdout.trim().split("\n").at(-1)).toBe("143");
  });
});
