import { KernelError } from "../pseudokernel/index.js";
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

function byName(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
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
  let best: string | null = null;
  let bestTotal = -Infinity;
  outer: for (const c of candidates) {
    if (options.exclude?.has(c.record.name) === true) continue;
    for (const filter of FILTERS) if (filter.reject(spec, c) !== null) continue outer;
    let total = 0;
    for (const s of SCORES) {
      const w = weights[s.name];
      if (w !== 0) total += w * s.score(spec, c, context);
    }
    if (total > bestTotal || (total === bestTotal && best !== null && byName(c.record.name, best) < 0)) {
      best = c.record.name;
      bestTotal = total;
    }
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
  passed.sort((a, b) => b.total! - a.total! || byName(a.name, b.name));
  rejected.sort((a, b) => byName(a.name, b.name));
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
      const known = candidates.map((c) => c.record.name).sort(byName);
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
