import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rssBytes, startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
});

afterAll(async () => {
  await cluster?.close();
});

/** Per-stream memory is bounded by its credit window (4 MiB each way); a runtime's heap and code add ~100 MB. */
const RSS_LIMIT = 250 * 1024 * 1024;

describe("backpressure", () => {
  it("a slow consumer pauses a 1 GiB producer; every runtime's RSS stays bounded; no byte is lost", async () => {
    const runtimes = (await cluster.status()).map((n) => n.pid!);
    let peak = 0;
    const sampler = setInterval(() => {
      void Promise.all(runtimes.map(rssBytes)).then((rss) => (peak = Math.max(peak, ...rss)));
    }, 100);
    try {
      const r = await cluster.sh("@n1 head -c 1073741824 /dev/zero | @n2 sh -c 'sleep 5; wc -c'", { timeoutMs: 180_000 });
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("1073741824");
      expect(r.ms).toBeGreaterThan(5000);
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(RSS_LIMIT);
  });
});
