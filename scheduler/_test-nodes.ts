import type { NodeRecord } from "../pseudokernel/index.js";
import type { Candidate } from "./candidate.js";

/** A node record for tests: 2 CPUs, 8 GiB, idle, no labels, unless overridden. */
export function nodeRecord(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    name,
    state: "ready",
    labels: {},
    nats: "nats://127.0.0.1:4222",
    pid: 1,
    cpus: 2,
    load: 0,
    memTotal: 8 * 2 ** 30,
    memFree: 8 * 2 ** 30,
    procs: 0,
    mount: null,
    heartbeat: 0,
    started: 0,
    allocatable: { cpu: 2, mem: 8 * 2 ** 30 },
    reserved: { cpu: 0, mem: 0 },
    ...over,
  };
}

export function candidate(name: string, over: Partial<NodeRecord> = {}, extra: Partial<Candidate> = {}): Candidate {
  const record = nodeRecord(name, over);
  return { record, state: record.state, pending: 0, ...extra };
}
