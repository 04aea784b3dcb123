import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

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

describe("node loss", () => {
  it("a killed node's processes become lost within 5 s; connected pipelines end with an error", async () => {
    const sleeper = cluster.start(["shell", "-c", "@n3 sleep 1000"]);
    const pipeline = cluster.start(["shell", "-c", "@n1 seq 1 1000000000 | @n3 cat > /dev/null"]);
    const sleep = await eventually(async () => {
      const rows = JSON.parse((await cluster.oneos(["ps", "--json"])).stdout) as PsRow[];
      return rows.find((p) => p.command === "sleep 1000");
    }, 10_000, "sleep on n3");
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    expect((await cluster.oneos(["cluster", "kill", "n3"])).status).toBe(0);

    const lostAfter = await eventually(async () => {
      const rows = JSON.parse((await cluster.oneos(["ps", "--json", "-a"])).stdout) as PsRow[];
      return rows.find((p) => p.pid === sleep.pid)?.state === "lost" ? Date.now() - killedAt : undefined;
    }, 15_000, "the process to be lost");
    expect(lostAfter).toBeLessThan(8000); // 5 s + the time `oneos ps` itself takes on two busy cores

    const nodes = JSON.parse((await cluster.oneos(["nodes", "--json"])).stdout) as { name: string; state: string }[];
    expect(nodes.find((n) => n.name === "n3")?.state).toBe("down");

    const s = await sleeper.done;
    expect(s.status).not.toBe(0);
    expect(s.stderr).toMatch(/lost|n3/);
    const p = await pipeline.done;
    expect(p.status).not.toBe(0);
    expect(p.stderr).toMatch(/lost|n3|peer/i);
    expect(Date.now() - killedAt).toBeLessThan(30_000);

    // the survivors still work
    const r = await cluster.sh("@n1 echo a | @n2 cat");
    expect(r.stdout).toBe("a\n");

    // and the node comes back
    expect((await cluster.oneos(["cluster", "restart", "n3"], { timeoutMs: 120_000 })).status).toBe(0);
    expect((await cluster.sh("@n3 echo back")).stdout).toBe("back\n");
  });
});
