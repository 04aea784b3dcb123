import { allocatableOf, reservedOf, tasksOf, type Candidate } from "./candidate.js";
import type { PlacementSpec } from "./placement-spec.js";

/** How work is laid over the nodes: a cluster setting (`oneos scheduler set strategy ...`). */
export type Strategy = "spread" | "binpack";
export const STRATEGIES: readonly Strategy[] = ["spread", "binpack"];

export type ScoreName = "spread" | "binpack" | "load" | "locality";

/** What a scorer may know beyond the request: the strategy and the nodes of already placed pipe peers. */
export interface ScoreContext {
  readonly strategy: Strategy;
  /** Nodes running the other end of this process's pipes (pipe locality). */
  readonly near: ReadonlySet<string>;
}

/** Each score is in [0, 1], higher is better; the node with the highest weighted sum wins. */
export interface PlacementScore {
  readonly name: ScoreName;
  score(spec: PlacementSpec, candidate: Candidate, context: ScoreContext): number;
}

/** Fewer running processes per CPU is better: repeated placements even out the counts. */
export const spreadScore: PlacementScore = {
  name: "spread",
  score: (_spec, c) => 1 / (1 + tasksOf(c) / Math.max(1, c.record.cpus)),
};

/**
 * Fuller is better, so that work packs onto few nodes and leaves others whole: for a resource request
 * the share of the node's allocatable CPU and memory that would be reserved with it; for a request
 * without resources the density of running processes.
 */
export const binpackScore: PlacementScore = {
  name: "binpack",
  score(spec, c) {
    const want = spec.resources;
    if (want.cpu === 0 && want.mem === 0) {
      const tasks = tasksOf(c);
      return tasks / (tasks + Math.max(1, c.record.cpus));
    }
    const total = allocatableOf(c.record);
    const reserved = reservedOf(c);
    const cpu = total.cpu > 0 ? Math.min(1, (reserved.cpu + want.cpu) / total.cpu) : 0;
    const mem = total.mem > 0 ? Math.min(1, (reserved.mem + want.mem) / total.mem) : 0;
    return (cpu + mem) / 2;
  },
};

/** A lower 1-minute load average per CPU is better (what the node is doing, whoever started it). */
export const loadScore: PlacementScore = {
  name: "load",
  score: (_spec, c) => 1 / (1 + c.record.load / Math.max(1, c.record.cpus)),
};

/** Being where this process's pipe peers already run is better: the pipe's bytes then stay on one machine. */
export const localityScore: PlacementScore = {
  name: "locality",
  score: (_spec, c, context) => (context.near.has(c.record.name) ? 1 : 0),
};

/**
 * Weights per strategy. Locality's 0.5 equals the spread score's drop from an idle node to one with one
 * process per CPU: a pipeline's stages stay together unless their node has about one more running
 * process per CPU than the best other node (then the stream between nodes costs less than the queueing).
 */
export const WEIGHTS: Readonly<Record<Strategy, Readonly<Record<ScoreName, number>>>> = {
  spread: { spread: 1, binpack: 0, load: 1, locality: 0.5 },
  binpack: { spread: 0, binpack: 1, load: 0.1, locality: 0.5 },
};

export const SCORES: readonly PlacementScore[] = [spreadScore, binpackScore, loadScore, localityScore];
