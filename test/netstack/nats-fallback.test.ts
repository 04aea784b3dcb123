import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";
import { TcpTool } from "./tcp-tool.js";

/** The netstack when no peer link can be made: every connection and both its streams go over NATS. */
let cluster: TestCluster;
let net: TcpTool;

beforeAll(async () => {
  cluster = await startTestCluster({ env: { ONEOS_PEER_LINKS: "off" } });
  net = new TcpTool(cluster);
});

afterAll(async () => {
  await cluster?.close();
});

describe("netstack over NATS (ONEOS_PEER_LINKS=off)", () => {
  it("the runtimes make no peer links", async () => {
    for (const node of ["n1", "n2", "n3"]) {
      const log = await readFile(join(cluster.home, "cluster", node, "runtime.log"), "utf8");
      expect(log).toContain("peer links off");
    }
  });

  it("an HTTP server on n1 answers curl from n2 and n3", async () => {
    cluster.start(["shell", "-c", "@n1 python3 -m http.server 8000"]);
    await eventually(async () => ((await cluster.sh("@n2 curl -s http://localhost:8000/")).stdout.includes("Directory listing") ? true : undefined), 10_000, "port 8000");
    const r = await cluster.sh("@n3 curl -s http://localhost:8000/");
    expect(r.stdout).toContain("Directory listing");
  });

  it("20 MB go through one connection byte-exact in both directions", async () => {
    await net.serve("n1", 9200, "echo");
    const r = await net.run("n2", `transfer 9200 ${20_000_000}`);
    expect(r).toMatchObject({ sent: 20_000_000, received: 20_000_000, same: true });
  });

  it("half-close: the client shuts down writing and still reads the server's reply", async () => {
    await net.serve("n1", 9201, "collect 1");
    const r = (await net.run("n3", "halfclose 9201")) as { reply: { got: number; sha: string }; expect: string };
    expect(r.reply.got).toBe(24);
    expect(r.reply.sha).toBe(r.expect);
  });
});
