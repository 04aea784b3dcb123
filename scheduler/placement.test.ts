import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KernelError } from "../pseudokernel/index.js";
import { candidate, nodeRecord } from "./_test-nodes.js";
import type { Candidate } from "./candidate.js";
import { formatPlan } from "./explain.js";
import { parseLabelTerms, termHolds } from "./label-terms.js";
import { FILTERS } from "./placement-filters.js";
import { formatSpec, parsePlacementPrefix, type PlacementSpec } from "./placement-spec.js";
import type { Strategy } from "./placement-scores.js";
import { chooseNode, placeOrExplain, placeProcess, planPlacement } from "./plan.js";
import { Placer } from "./placer.js";
import { parseMemory, parseResources } from "./resources.js";

const spec = (text: string): PlacementSpec => {
  const p = parsePlacementPrefix(text);
  if (p === null || p.kind !== "spec") throw new Error(`not a spec: ${text}`);
  return p.spec;
};

describe("placement syntax", () => {
  it("parses node, labels, sets, negation and resource requests", () => {
    expect(parsePlacementPrefix("*")).toEqual({ kind: "all" });
    expect(spec("n2")).toEqual({ node: "n2", labels: [], resources: { cpu: 0, mem: 0 } });
    expect(spec("gpu=1").labels).toEqual([{ key: "gpu", op: "in", values: ["1"] }]);
    expect(spec("zone=a/b,arch!=arm").labels).toEqual([
      { key: "zone", op: "in", values: ["a", "b"] },
      { key: "arch", op: "notin", values: ["arm"] },
    ]);
    expect(spec("{cpu=2,mem=512M}").resources).toEqual({ cpu: 2, mem: 512 * 2 ** 20 });
    expect(spec("n2{cpu=500m}")).toEqual({ node: "n2", labels: [], resources: { cpu: 0.5, mem: 0 } });
    expect(spec("gpu=1{mem=1G}").resources.mem).toBe(2 ** 30);
    expect(parsePlacementPrefix("")).toBeNull();
    expect(parsePlacementPrefix("a b")).toBeNull();
  });

  it("rejects bad requests with EINVAL naming the problem", () => {
    expect(() => parseResources("cpu=abc")).toThrow(/cpu=abc/);
    expect(() => parseResources("gpu=1")).toThrow(/unknown resource 'gpu'/);
    expect(() => parseMemory("12Q")).toThrow(KernelError);
  });

  it("formats a spec back to the prefix that asks for it", () => {
    for (const text of ["n2", "gpu=1", "zone=a/b,arch!=arm", "{cpu=2,mem=512M}", "n2{cpu=0.5}", "gpu=1{mem=1G}"]) {
      expect(formatSpec(spec(text))).toBe(`@${text}`);
    }
  });

  it("label terms: equality, set membership, negation (absent labels satisfy !=)", () => {
    const [eq, set, not] = parseLabelTerms("gpu=1,zone=a/b,arch!=arm");
    expect(termHolds(eq!, { gpu: "1" })).toBe(true);
    expect(termHolds(eq!, { gpu: "2" })).toBe(false);
    expect(termHolds(set!, { zone: "b" })).toBe(true);
    expect(termHolds(set!, {})).toBe(false);
    expect(termHolds(not!, {})).toBe(true);
    expect(termHolds(not!, { arch: "arm" })).toBe(false);
  });
});

describe("filters and explanations", () => {
  const nodes = [
    candidate("n1", { labels: { gpu: "1" }, reserved: { cpu: 2, mem: 0 } }),
    candidate("n2", { labels: { zone: "a" } }),
    candidate("n3", { state: "down" }),
  ];

  it("placeOrExplain() never picks a node that fails a filter", () => {
    expect(placeOrExplain(spec("gpu=1"), nodes)).toBe("n1");
    expect(placeOrExplain(spec("{cpu=1}"), nodes)).toBe("n2");
    expect(placeOrExplain(spec("gpu!=1"), nodes)).toBe("n2");
  });

  it("an impossible request fails with EPLACE and one line per node naming the filter", () => {
    let error: unknown;
    try {
      placeOrExplain(spec("gpu=1{cpu=1}"), nodes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KernelError);
    expect((error as KernelError).code).toBe("EPLACE");
    expect((error as KernelError).message).toBe(
      [
        "no node fits @gpu=1{cpu=1}:",
        "  n1: resources: cpu 1 > 0 free of 2",
        "  n2: labels: gpu=1 does not hold (no label gpu)",
        "  n3: node-state: node is down",
      ].join("\n"),
    );
  });

  it("an unknown or down node is ENONODE with the known nodes named", () => {
    expect(() => placeProcess({ kind: "node", node: "n9" }, nodes)).toThrow("unknown node 'n9' (known: n1, n2, n3)");
    expect(() => placeProcess({ kind: "node", node: "n3" }, nodes)).toThrow("node 'n3' is down");
  });

  it("--explain shows the chosen node, the score parts and the rejected nodes", () => {
    const text = formatPlan(planPlacement(spec("{cpu=1}"), nodes));
    expect(text).toMatch(/^@\{cpu=1\} → n2 {3}\(strategy spread\)/);
    expect(text).toMatch(/n2: score [\d.]+ \(spread [\d.]+, load [\d.]+, locality [\d.]+\) {2}← chosen/);
    expect(text).toContain("n1: rejected by resources: cpu 1 > 0 free of 2");
    expect(text).toContain("n3: rejected by node-state: node is down");
  });

  it("counts pending reservations of the placer itself, not only the heartbeat's", () => {
    const placer = new Placer();
    const views = [nodeRecord("n1")].map((r) => ({ ...r, effective: "ready" as const }));
    const lastSeen = (): number => 0;
    expect(placer.place(spec("{cpu=1.5}"), views, { strategy: "spread", lastSeen })).toBe("n1");
    const ticket = placer.reserve("n1", { cpu: 1.5, mem: 0 });
    ticket.confirm(10);
    expect(() => placer.place(spec("{cpu=1}"), views, { strategy: "spread", lastSeen })).toThrow(/cpu 1 > 0.5 free/);
    // A heartbeat heard after the spawn was confirmed includes it: the pending entry no longer counts.
    expect(placer.place(spec("{cpu=1}"), views, { strategy: "spread", lastSeen: () => 11 })).toBe("n1");
  });

  it("pipe locality keeps a pipeline's unprefixed stages together on equally idle nodes", () => {
    const placer = new Placer();
    const views = ["n1", "n2", "n3"].map((n) => ({ ...nodeRecord(n), effective: "ready" as const }));
    const options = { strategy: "spread" as const, lastSeen: () => 0 };
    const first = placer.place(spec("{cpu=0.1}"), views, { ...options, pipes: ["p1"] });
    placer.reserve(first, { cpu: 0.1, mem: 0 }, ["p1"]);
    expect(placer.place(spec("{cpu=0.1}"), views, { ...options, pipes: ["p1", "p2"] })).toBe(first);
  });
});

// ---- property tests ----

const labelValue = fc.constantFrom("a", "b", "c");
const arbNode = (i: number): fc.Arbitrary<Candidate> =>
  fc
    .record({
      cpus: fc.integer({ min: 1, max: 16 }),
      load: fc.double({ min: 0, max: 32, noNaN: true }),
      procs: fc.integer({ min: 0, max: 50 }),
      usedCpu: fc.double({ min: 0, max: 1, noNaN: true }),
      state: fc.constantFrom("ready", "ready", "ready", "suspect", "down"),
      zone: fc.option(labelValue, { nil: undefined }),
      gpu: fc.option(fc.constantFrom("0", "1"), { nil: undefined }),
      pending: fc.integer({ min: 0, max: 5 }),
    })
    .map((r) =>
      candidate(
        `n${i + 1}`,
        {
          cpus: r.cpus,
          load: r.load,
          procs: r.procs,
          state: r.state as "ready",
          labels: { ...(r.zone !== undefined ? { zone: r.zone } : {}), ...(r.gpu !== undefined ? { gpu: r.gpu } : {}) },
          allocatable: { cpu: r.cpus, mem: 16 * 2 ** 30 },
          reserved: { cpu: r.usedCpu * r.cpus, mem: 0 },
        },
        { pending: r.pending },
      ),
    );
const arbNodes = fc.integer({ min: 0, max: 12 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbNode(i))));
const arbSpec: fc.Arbitrary<PlacementSpec> = fc.record({
  labels: fc.array(
    fc.record({ key: fc.constantFrom("zone", "gpu"), op: fc.constantFrom("in", "notin"), values: fc.array(fc.constantFrom("a", "b", "0", "1"), { minLength: 1, maxLength: 2 }) }),
    { maxLength: 2 },
  ),
  resources: fc.record({ cpu: fc.constantFrom(0, 0.5, 1, 4, 20), mem: fc.constantFrom(0, 2 ** 30, 32 * 2 ** 30) }),
});
const arbStrategy = fc.constantFrom<Strategy>("spread", "binpack");

describe("placement properties", () => {
  it("never places on a node that fails a filter; places whenever some node passes them all", () => {
    fc.assert(
      fc.property(arbNodes, arbSpec, arbStrategy, (nodes, s, strategy) => {
        const chosen = chooseNode(s, nodes, { strategy });
        const passing = nodes.filter((c) => FILTERS.every((f) => f.reject(s, c) === null)).map((c) => c.record.name);
        if (passing.length === 0) return chosen === null;
        return chosen !== null && passing.includes(chosen);
      }),
      { numRuns: 500 },
    );
  });

  it("the explained plan chooses what the fast path chooses, and names a filter for every rejected node", () => {
    fc.assert(
      fc.property(arbNodes, arbSpec, arbStrategy, (nodes, s, strategy) => {
        const plan = planPlacement(s, nodes, { strategy });
        expect(plan.chosen).toBe(chooseNode(s, nodes, { strategy }));
        for (const v of plan.nodes) expect(v.rejected !== undefined || v.total !== undefined).toBe(true);
        expect(plan.nodes.length).toBe(nodes.length);
      }),
      { numRuns: 300 },
    );
  });

  it("spread evens process counts: from equal nodes, counts never differ by more than one", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 8 }), (n, jobs, cpus) => {
        const counts = new Map<string, number>();
        for (let j = 0; j < jobs; j++) {
          const nodes = Array.from({ length: n }, (_, i) => candidate(`n${i + 1}`, { cpus, load: 1 }, { pending: counts.get(`n${i + 1}`) ?? 0 }));
          const chosen = chooseNode({ labels: [], resources: { cpu: 0, mem: 0 } }, nodes, { strategy: "spread" })!;
          counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
        }
        const all = Array.from({ length: n }, (_, i) => counts.get(`n${i + 1}`) ?? 0);
        return Math.max(...all) - Math.min(...all) <= 1;
      }),
      { numRuns: 300 },
    );
  });

  it("bin-pack packs: unit requests fill a node before the next one is used", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 64 }), (n, cpus, jobs) => {
        const reserved = new Map<string, number>();
        for (let j = 0; j < jobs; j++) {
          const nodes = Array.from({ length: n }, (_, i) =>
            candidate(`n${i + 1}`, { cpus, allocatable: { cpu: cpus, mem: 2 ** 30 }, reserved: { cpu: reserved.get(`n${i + 1}`) ?? 0, mem: 0 } }),
          );
          const chosen = chooseNode({ labels: [], resources: { cpu: 1, mem: 0 } }, nodes, { strategy: "binpack" });
          if (chosen === null) return j >= n * cpus; // full only when every CPU is taken
          reserved.set(chosen, (reserved.get(chosen) ?? 0) + 1);
        }
        const used = [...reserved.values()].filter((v) => v > 0).length;
        return used === Math.ceil(Math.min(jobs, n * cpus) / cpus);
      }),
      { numRuns: 300 },
    );
  });
});
