import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type RunResult, type TestCluster } from "../harness/oneos-cluster.js";

/** The netstack when no peer link can be made: every connection and both its streams go over NATS. */
const TOOL = fileURLToPath(new URL("./programs/tcp-tool.py", import.meta.url));

let cluster: TestCluster;
const background: Promise<RunResult>[] = [];

beforeAll(async () => {
  cluster = await startTestCluster({ env: { ONEOS_PEER_LINKS: "off" } });
});

afterAll(async () => {
  await cluster?.close();
});

async function serve(node: string, port: number, args: string): Promise<void> {
  background.push(cluster.start(["shell", "-c", `@${node} python3 ${TOOL} server ${port} ${args}`]).done);
  await eventually(
    async () => {
      const r = await cluster.oneos(["ports", "--json"]);
      return (JSON.parse(r.stdout) as { port: number; node: string }[]).some((p) => p.port === port && p.node === node) ? true : undefined;
    },
    10_000,
    `port ${port} on ${node}`,
  );
}

async function tool(node: string, args: string): Promise<Record<string, unknown>> {
  const r = await cluster.sh(`@${node} python3 ${TOOL} ${args}`, { timeoutMs: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
}

describe("netstack over NATS (ONEOS_PEER_LINKS=off)", () => {
  it("the runtimes make no peer links", async () => {
    for (const node of ["n1", "n2", "n3"]) {
      const log = await readFile(join(cluster.home, "cluster", node, "runtime.log"), "utf8");
      expect(log).toContain("peer links off");
    }
  });

  it("an HTTP server on n1 answers curl from n2 and n3", async () => {
    background.push(cluster.start(["shell", "-c", "@n1 python3 -m http.server 8000"]).done);
    await eventually(async () => ((await cluster.sh("@n2 curl -s http://localhost:8000/")).stdout.includes("Directory listing") ? true : undefined), 10_000, "port 8000");
    const r = await cluster.sh("@n3 curl -s http://localhost:8000/");
    expect(r.stdout).toContain("Directory listing");
  });

  it("20 MB go through one connection byte-exact in both directions", async () => {
    await serve("n1", 9200, "echo");
    const r = await tool("n2", `transfer 9200 ${20_000_000}`);
    expect(r).toMatchObject({ sent: 20_000_000, received: 20_000_000, same: true });
  });

  it("half-close: the client shuts down writing and still reads the server's reply", async () => {
    await serve("n1", 9201, "collect 1");
    const r = (await tool("n3", "halfclose 9201")) as { reply: { got: number; sha: string }; expect: string };
    expect(r.reply.got).toBe(24);
    expect(r.reply.sha).toBe(r.expect);
  });
});
