/**
 * NATS subject names and KV bucket names, in one place.
 *
 * `oneos.node.<node>.<verb>` — a node runtime's kernel API (request/reply).
 * `oneos.stream.<id>.w` / `.r` — the two directions of one stream (writer→reader data, reader→writer credit).
 */

export const SUBJECT_ROOT = "oneos";

/** Node names are subject tokens and KV keys: keep them to this alphabet. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function nodeSubject(node: string, verb: NodeVerb): string {
  return `${SUBJECT_ROOT}.node.${node}.${verb}`;
}

export type NodeVerb = "spawn" | "signal" | "ping" | "attach" | "exec-info";

export function streamDataSubject(id: string): string {
  return `${SUBJECT_ROOT}.stream.${id}.w`;
}

export function streamControlSubject(id: string): string {
  return `${SUBJECT_ROOT}.stream.${id}.r`;
}


export const BUCKETS = {
  nodes: "oneos_nodes",
  procs: "oneos_procs",
  pids: "oneos_pids",
} as const;
