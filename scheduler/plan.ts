import { compareNodeNames, KernelError } from "../pseudokernel/index.js";
import type { Candidate } from "./candidate.js";
import { FILTERS, type FilterName } from "./placement-filters.js";
import { SCORES, WEIGHTS, type ScoreContext, type ScoreName, type Strategy } from "./placement-scores.js";
import { ANY_NODE, type PlacementSpec } from "./placement-spec.js";
import { formatPlanFailure } from "./explain.js";

export interface PlaceOptions {
  readonly strategy?: Strategy;
  /** Nodes of this process's already placed pipe peers. */
  readonly near?: Iterable<string>;
  /** Nodes not to use this time (they refused the request a moment ago). */
  readonly exclude?: ReadonlySet<string>;
  /**
   * Above this many candidates, `chooseNode` scores only a sample (Nomad's limit iterator): it walks the
   * nodes from a random offset and stops after `SAMPLE_SIZE` feasible ones. Default `SAMPLE_ABOVE`;
   * `Infinity` scores every node.
   */
  readonly sampleAbove?: number;
  /** For the sample's starting offset (default `Math.random`). */
  readonly random?: () => number;
}

/** Clusters up to this size are scored exhaustively (ties and spreading exact). */
export const SAMPLE_ABOVE = 256;
/** Feasible nodes scored per decision on larger clusters: the best of 32 random feasible nodes. */
export const SAMPLE_SIZE = 32;

/** Amounts are compared with this slack (as the resources filter does). */
const EPSILON = 1e-9;

/** The four filters of placement-filters.ts, inlined without allocation for the fast path. */
function passes(spec: PlacementSpec, c: Candidate): boolean {
  if (c.state !== "ready") return false;
  const r = c.record;
  if (spec.node !== undefined && spec.node !== r.name) return false;
  for (const t of spec.labels) {
    const value = Object.hasOwn(r.labels, t.key) ? r.labels[t.key] : undefined;
    const member = value !== undefined && t.values.includes(value);
    if (t.op === "in" ? !member : member) return false;
  }
  const want = spec.resources;
  if (want.cpu === 0 && want.mem === 0) return true;
  const cpu = (r.allocatable?.cpu ?? r.cpus) - (r.reserved?.cpu ?? 0) - (c.pendingReserved?.cpu ?? 0);
  const mem = (r.allocatable?.mem ?? r.memTotal) - (r.reserved?.mem ?? 0) - (c.pendingReserved?.mem ?? 0);
  return want.cpu <= cpu + EPSILON && want.mem <= mem + EPSILON;
}

/** The weighted score sum of placement-scores.ts, inlined. */
function totalScore(spec: PlacementSpec, c: Candidate, weights: Readonly<Record<ScoreName, number>>, near: ReadonlySet<string>): number {
  const r = c.record;
  const cpus = Math.max(1, r.cpus);
  const tasks = r.procs + c.pending;
  let total = 0;
  if (weights.spread !== 0) total += weights.spread / (1 + tasks / cpus);
  if (weights.load !== 0) total += weights.load / (1 + r.load / cpus);
  if (weights.locality !== 0 && near.size > 0 && near.has(r.name)) total += weights.locality;
  if (weights.binpack !== 0) {
    const want = spec.resources;
    if (want.cpu === 0 && want.mem === 0) {
      total += (weights.binpack * tasks) / (tasks + cpus);
    } else {
      const allocCpu = r.allocatable?.cpu ?? r.cpus;
      const allocMem = r.allocatable?.mem ?? r.memTotal;
      const usedCpu = (r.reserved?.cpu ?? 0) + (c.pendingReserved?.cpu ?? 0) + want.cpu;
      const usedMem = (r.reserved?.mem ?? 0) + (c.pendingReserved?.mem ?? 0) + want.mem;
      const fc = allocCpu > 0 ? Math.min(1, usedCpu / allocCpu) : 0;
      const fm = allocMem > 0 ? Math.min(1, usedMem / allocMem) : 0;
      total += (weights.binpack * (fc + fm)) / 2;
    }
  }
  return total;
}

/** One node's fate in a placement decision. */
export interface NodeVerdict {
  readonly name: string;
  /** The first filter that rejected the node, and why. */
  readonly rejected?: { readonly filter: FilterName | "excluded"; readonly reason: string };
  /** Weighted parts of the score (only for nodes that passed every filter). */
  readonly scores?: Readonly<Record<ScoreName, number>>;
  readonly total?: number;
}

/** A whole decision, for `--explain` and for error messages. */
export interface PlacementPlan {
  readonly spec: PlacementSpec;
  readonly strategy: Strategy;
  readonly chosen: string | null;
  /** Every candidate, best first among those that passed, then the rejected ones by name. */
  readonly nodes: readonly NodeVerdict[];
}

const NONE: ReadonlySet<string> = new Set();

function contextOf(options: PlaceOptions): ScoreContext {
  return { strategy: options.strategy ?? "spread", near: options.near === undefined ? NONE : new Set(options.near) };
}


/**
 * The node for a request, or null when none passes the filters: the fast path (no explanation built).
 * Pure: no I/O, no clock. Ties go to the lowest name.
 *
 * @example
 * const node = chooseNode({ labels: [], resources: { cpu: 1, mem: 0 } }, candidates, { strategy: "spread" });
 */
export function chooseNode(spec: PlacementSpec, candidates: readonly Candidate[], options: PlaceOptions = {}): string | null {
  const context = contextOf(options);
  const weights = WEIGHTS[context.strategy];
  const n = candidates.length;
  const sampled = spec.node === undefined && n > (options.sampleAbove ?? SAMPLE_ABOVE);
  const start = sampled ? Math.floor((options.random ?? Math.random)() * n) % n : 0;
  let best: string | null = null;
  let bestTotal = -Infinity;
  let feasible = 0;
  for (let k = 0; k < n; k++) {
    const c = candidates[(start + k) % n]!;
    if (options.exclude?.has(c.record.name) === true || !passes(spec, c)) continue;
    const total = totalScore(spec, c, weights, context.near);
    if (total > bestTotal || (total === bestTotal && best !== null && compareNodeNames(c.record.name, best) < 0)) {
      best = c.record.name;
      bestTotal = total;
    }
    if (sampled && ++feasible >= SAMPLE_SIZE) break;
  }
  return best;
}

/** The same decision as `chooseNode`, with every node's filter verdict and score parts. */
export function planPlacement(spec: PlacementSpec, candidates: readonly Candidate[], options: PlaceOptions = {}): PlacementPlan {
  const context = contextOf(options);
  const weights = WEIGHTS[context.strategy];
  const passed: NodeVerdict[] = [];
  const rejected: NodeVerdict[] = [];
  for (const c of candidates) {
    const name = c.record.name;
    if (options.exclude?.has(name) === true) {
      rejected.push({ name, rejected: { filter: "excluded", reason: "refused this request a moment ago" } });
      continue;
    }
    const failing = FILTERS.map((f) => ({ filter: f.name, reason: f.reject(spec, c) })).find((r) => r.reason !== null);
    if (failing !== undefined) {
      rejected.push({ name, rejected: { filter: failing.filter, reason: failing.reason! } });
      continue;
    }
    const scores = {} as Record<ScoreName, number>;
    let total = 0;
    for (const s of SCORES) {
      const w = weights[s.name];
      if (w === 0) continue;
      scores[s.name] = w * s.score(spec, c, context);
      total += scores[s.name];
    }
    passed.push({ name, scores, total });
  }
  passed.sort((a, b) => b.total! - a.total! || compareNodeNames(a.name, b.name));
  rejected.sort((a, b) => compareNodeNames(a.name, b.name));
  return { spec, strategy: context.strategy, chosen: passed[0]?.name ?? null, nodes: [...passed, ...rejected] };
}

/**
 * Chooses a node or throws: `ENONODE` for a node that does not exist or is not ready (`@n9 cmd`),
 * `EPLACE` with a per-node explanation when no node passes the filters.
 */
export function placeOrExplain(spec: PlacementSpec, candidates: readonly Candidate[], options: PlaceOptions = {}): string {
  const chosen = chooseNode(spec, candidates, options);
  if (chosen !== null) return chosen;
  if (spec.node !== undefined) {
    const node = candidates.find((c) => c.record.name === spec.node);
    if (node === undefined) {
      const known = candidates.map((c) => c.record.name).sort(compareNodeNames);
      throw new KernelError("ENONODE", `unknown node '${spec.node}' (known: ${known.join(", ") || "none"})`);
    }
    if (node.state !== "ready") throw new KernelError("ENONODE", `node '${spec.node}' is ${node.state}`);
  }
  throw new KernelError("EPLACE", formatPlanFailure(planPlacement(spec, candidates, options)));
}

/** What the shell's placement syntax asked for before resource requests existed. */
export type PlacementRequest =
  | { readonly kind: "auto" }
  | { readonly kind: "node"; readonly node: string }
  | { readonly kind: "label"; readonly key: string; readonly value: string };

export function specOf(request: PlacementRequest): PlacementSpec {
  switch (request.kind) {
    case "auto":
      return ANY_NODE;
    case "node":
      return { ...ANY_NODE, node: request.node };
    case "label":
      return { ...ANY_NODE, labels: [{ key: request.key, op: "in", values: [request.value] }] };
  }
}

/**
 * Chooses a node for an `auto` / `node` / `label` request with the default (spread) strategy.
 *
 * @example
 * const node = placeProcess({ kind: "auto" }, candidates);
 */
export function placeProcess(request: PlacementRequest, candidates: readonly Candidate[]): string {
  return placeOrExplain(specOf(request), candidates);
}
