import type { NodeRecord, NodeState } from "../pseudokernel/index.js";
import type { Candidate } from "./candidate.js";
import { placeOrExplain, planPlacement, type PlaceOptions, type PlacementPlan } from "./plan.js";
import type { Strategy } from "./placement-scores.js";
import type { PlacementSpec } from "./placement-spec.js";
import { NO_RESOURCES, type Resources } from "./resources.js";

/** A spawn this placer sent: counted against its node until the node's heartbeats include it. */
export interface PlacementTicket {
  readonly node: string;
  /** The node answered "spawned" at local time `at`: any heartbeat received later counts the process. */
  confirm(at: number): void;
  /** The spawn failed or the process ended. */
  end(): void;
}

interface Entry {
  readonly node: string;
  readonly resources: Resources;
  readonly pipes: readonly string[];
  confirmedAt: number | undefined;
}

/**
 * One client's placement state over the pure scheduler (the shell has one): what it placed that the
 * nodes' heartbeats do not show yet, so a burst of 30 `sleep &` spreads instead of landing on the node
 * that looked idlest a second ago, and which node each pipe's other end went to (pipe locality).
 * No I/O; the caller passes the nodes and the time each was last heard from.
 */
export class Placer {
  #entries = new Set<Entry>();
  /** Pipe id → node of the stage at one end of it (the first one placed). */
  #pipes = new Map<string, string>();

  /**
   * Chooses a node for `spec` among `nodes`, or throws `ENONODE`/`EPLACE` with a per-node explanation.
   * `pipes` are the ids of the pipes this process reads or writes.
   */
  place(
    spec: PlacementSpec,
    nodes: readonly (NodeRecord & { readonly effective: NodeState })[],
    options: { strategy: Strategy; lastSeen: (node: string) => number; pipes?: readonly string[]; exclude?: ReadonlySet<string> },
  ): string {
    const near = (options.pipes ?? []).map((p) => this.#pipes.get(p)).filter((n): n is string => n !== undefined);
    const place: PlaceOptions = { strategy: options.strategy, near, ...(options.exclude !== undefined ? { exclude: options.exclude } : {}) };
    return placeOrExplain(spec, this.candidates(nodes, options.lastSeen), place);
  }

  /** The same decision as `place`, with every node's verdict (for `oneos place --explain`). */
  plan(
    spec: PlacementSpec,
    nodes: readonly (NodeRecord & { readonly effective: NodeState })[],
    options: { strategy: Strategy; lastSeen: (node: string) => number; pipes?: readonly string[] },
  ): PlacementPlan {
    const near = (options.pipes ?? []).map((p) => this.#pipes.get(p)).filter((n): n is string => n !== undefined);
    return planPlacement(spec, this.candidates(nodes, options.lastSeen), { strategy: options.strategy, near });
  }

  /** The nodes with what this placer sent there and their heartbeats do not count yet. */
  candidates(nodes: readonly (NodeRecord & { readonly effective: NodeState })[], lastSeen: (node: string) => number): Candidate[] {
    const pending = new Map<string, { count: number; cpu: number; mem: number }>();
    for (const e of this.#entries) {
      if (e.confirmedAt !== undefined && lastSeen(e.node) > e.confirmedAt) continue;
      const p = pending.get(e.node) ?? { count: 0, cpu: 0, mem: 0 };
      p.count++;
      p.cpu += e.resources.cpu;
      p.mem += e.resources.mem;
      pending.set(e.node, p);
    }
    return nodes.map((record) => {
      const p = pending.get(record.name);
      return {
        record,
        state: record.effective,
        pending: p?.count ?? 0,
        pendingReserved: p === undefined ? NO_RESOURCES : { cpu: p.cpu, mem: p.mem },
      };
    });
  }

  /** Records a spawn about to be sent to `node`; `pipes` then lead to it for locality. */
  reserve(node: string, resources: Resources, pipes: readonly string[] = []): PlacementTicket {
    const entry: Entry = { node, resources, pipes, confirmedAt: undefined };
    this.#entries.add(entry);
    const mine = pipes.filter((p) => !this.#pipes.has(p));
    for (const p of mine) this.#pipes.set(p, node);
    return {
      node,
      confirm: (at) => {
        entry.confirmedAt = at;
      },
      end: () => {
        this.#entries.delete(entry);
        for (const p of mine) this.#pipes.delete(p);
      },
    };
  }

  /** Placed processes not yet ended (for tests and `--explain`). */
  get outstanding(): number {
    return this.#entries.size;
  }
}
