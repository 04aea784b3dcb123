import { allocatableOf, reservedOf, type Candidate } from "./candidate.js";
import { formatTerm, termHolds } from "./label-terms.js";
import type { PlacementSpec } from "./placement-spec.js";
import { formatCpu, formatMemory } from "./resources.js";

/**
 * A filter says why a node cannot take a request, or null when it can. Filters are hard constraints:
 * a node that fails one is never chosen, whatever its score.
 */
export interface PlacementFilter {
  readonly name: FilterName;
  reject(spec: PlacementSpec, candidate: Candidate): string | null;
}

export type FilterName = "node-name" | "node-state" | "labels" | "resources";

/** Resource amounts are compared with this slack so that 0.1 + 0.2 cores fit in 0.3. */
const EPSILON = 1e-9;

export const nodeNameFilter: PlacementFilter = {
  name: "node-name",
  reject: (spec, c) => (spec.node === undefined || spec.node === c.record.name ? null : `not ${spec.node}`),
};

export const nodeStateFilter: PlacementFilter = {
  name: "node-state",
  reject: (_spec, c) => (c.state === "ready" ? null : `node is ${c.state}`),
};

export const labelsFilter: PlacementFilter = {
  name: "labels",
  reject(spec, c) {
    for (const term of spec.labels) {
      if (!termHolds(term, c.record.labels)) {
        const has = Object.hasOwn(c.record.labels, term.key) ? `${term.key}=${c.record.labels[term.key]}` : `no label ${term.key}`;
        return `${formatTerm(term)} does not hold (${has})`;
      }
    }
    return null;
  },
};

export const resourcesFilter: PlacementFilter = {
  name: "resources",
  reject(spec, c) {
    const want = spec.resources;
    if (want.cpu === 0 && want.mem === 0) return null;
    const total = allocatableOf(c.record);
    const reserved = reservedOf(c);
    const freeCpu = total.cpu - reserved.cpu;
    const freeMem = total.mem - reserved.mem;
    const problems: string[] = [];
    if (want.cpu > freeCpu + EPSILON) {
      problems.push(`cpu ${formatCpu(want.cpu)} > ${formatCpu(Math.max(0, freeCpu))} free of ${formatCpu(total.cpu)}`);
    }
    if (want.mem > freeMem + EPSILON) {
      problems.push(`mem ${formatMemory(want.mem)} > ${formatMemory(Math.max(0, freeMem))} free of ${formatMemory(total.mem)}`);
    }
    return problems.length === 0 ? null : problems.join("; ");
  },
};

/** In the order they are tried; a node's explanation names the first that rejects it. */
export const FILTERS: readonly PlacementFilter[] = [nodeNameFilter, nodeStateFilter, labelsFilter, resourcesFilter];
