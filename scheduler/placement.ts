import { KernelError, type NodeRecord, type NodeState } from "../pseudokernel/index.js";

/** What a command asks of its node. */
export type PlacementRequest =
  | { readonly kind: "auto" }
  | { readonly kind: "node"; readonly node: string }
  | { readonly kind: "label"; readonly key: string; readonly value: string };

/** A node as the scheduler sees it: its record, its state now, and work placed on it not yet reported. */
export interface Candidate {
  readonly record: NodeRecord;
  readonly state: NodeState;
  /** Processes this placer started there that the node's last heartbeat may not count yet. */
  readonly pending: number;
}

/**
 * Chooses a node: filters (name, label, state) then the least-loaded of what remains, where load is
 * the 1-minute load average plus running and pending processes, per CPU. Pure: no I/O, no clock.
 *
 * @example
 * const node = placeProcess({ kind: "auto" }, candidates);
 */
export function placeProcess(request: PlacementRequest, candidates: readonly Candidate[]): string {
  const known = candidates.map((c) => c.record.name).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  switch (request.kind) {
    case "node": {
      const node = candidates.find((c) => c.record.name === request.node);
      if (node === undefined) {
        throw new KernelError("ENONODE", `unknown node '${request.node}' (known: ${known.join(", ") || "none"})`);
      }
      if (node.state !== "ready") throw new KernelError("ENONODE", `node '${request.node}' is ${node.state}`);
      return node.record.name;
    }
    case "label": {
      const matching = candidates.filter((c) => c.record.labels[request.key] === request.value);
      if (matching.length === 0) {
        throw new KernelError("EPLACE", `no node has label ${request.key}=${request.value} (known: ${known.join(", ") || "none"})`);
      }
      return leastLoaded(matching, `label ${request.key}=${request.value}`);
    }
    case "auto":
      return leastLoaded(candidates, "any node");
  }
}

function leastLoaded(candidates: readonly Candidate[], what: string): string {
  const ready = candidates.filter((c) => c.state === "ready");
  if (ready.length === 0) throw new KernelError("EPLACE", `no ready node for ${what}`);
  let best = ready[0]!;
  let bestScore = Infinity;
  for (const c of ready) {
    const score = (c.record.load + c.record.procs + c.pending) / Math.max(1, c.record.cpus);
    if (score < bestScore || (score === bestScore && c.record.name < best.record.name)) {
      best = c;
      bestScore = score;
    }
  }
  return best.record.name;
}
