import type { NodeRecord, NodeState } from "../pseudokernel/index.js";
import { NO_RESOURCES, type Resources } from "./resources.js";

/** A node as the scheduler sees it: its last record, its state now, and work placed there not yet reported. */
export interface Candidate {
  readonly record: NodeRecord;
  readonly state: NodeState;
  /** Processes this placer started there that the node's last heartbeat does not count yet. */
  readonly pending: number;
  /** Their resource requests, likewise not yet in the heartbeat's `reserved`. */
  readonly pendingReserved?: Resources;
}

/** A node that reports no allocatable resources (an older runtime) offers its CPUs and all its memory. */
export function allocatableOf(record: NodeRecord): Resources {
  return record.allocatable ?? { cpu: record.cpus, mem: record.memTotal };
}

/** Reserved by the node's heartbeat plus what this placer sent since. */
export function reservedOf(candidate: Candidate): Resources {
  const reported = candidate.record.reserved ?? NO_RESOURCES;
  const pending = candidate.pendingReserved ?? NO_RESOURCES;
  return { cpu: reported.cpu + pending.cpu, mem: reported.mem + pending.mem };
}

/** Running processes, reported and pending. */
export function tasksOf(candidate: Candidate): number {
  return candidate.record.procs + candidate.pending;
}
