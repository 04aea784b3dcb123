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

/** The kernel verbs every runtime answers on `oneos.node.<name>.<verb>`. */
export const NODE_VERBS = ["spawn", "signal", "ping", "fs", "open", "resize", "attach", "detach", "register", "tail"] as const;
export type NodeVerb = (typeof NODE_VERBS)[number];

/** A registered process (a shell) receives the signals sent to its cluster PID here. */
export function registeredSignalSubject(pid: number): string {
  return `${SUBJECT_ROOT}.registered.${pid}.signal`;
}

export function streamDataSubject(id: string): string {
  return `${SUBJECT_ROOT}.stream.${id}.w`;
}

export function streamControlSubject(id: string): string {
  return `${SUBJECT_ROOT}.stream.${id}.r`;
}


/** Each runtime publishes its `NodeRecord` here every second (core NATS: liveness must not wait on JetStream). */
export function heartbeatSubject(node: string): string {
  return `${SUBJECT_ROOT}.heartbeat.${node}`;
}

export const HEARTBEAT_WILDCARD = `${SUBJECT_ROOT}.heartbeat.*`;

/** Any runtime answers here (queue group) with its view of the cluster's nodes. */
export const CLUSTER_VIEW_SUBJECT = `${SUBJECT_ROOT}.cluster.view`;

/** Any runtime answers here (queue group) with the cluster's listening ports, from its netstack's registry. */
export const CLUSTER_PORTS_SUBJECT = `${SUBJECT_ROOT}.cluster.ports`;

/** Any runtime answers here (queue group) with the whole process table from its mirror. */
export const CLUSTER_PS_SUBJECT = `${SUBJECT_ROOT}.cluster.ps`;

/**
 * Every runtime answers here (no queue group) with the processes it runs now, from memory: current
 * even while the process-table bucket is stalled by a JetStream election.
 */
export const CLUSTER_PS_LIVE_SUBJECT = `${SUBJECT_ROOT}.cluster.ps.live`;

/**
 * Users and sessions (any runtime answers, queue group). `login`: name + password → session token.
 * `refresh`: a live token → a new one. `users`: useradd/userdel/passwd/list, carrying a token.
 * `issue`: a token for any user without a password — only the admin identity may publish here.
 */
export const AUTH_SUBJECTS = {
  login: `${SUBJECT_ROOT}.auth.login`,
  refresh: `${SUBJECT_ROOT}.auth.refresh`,
  users: `${SUBJECT_ROOT}.auth.users`,
  issue: `${SUBJECT_ROOT}.auth.issue`,
} as const;

/** Runtimes publish audit events (JSON) here; the audit stream keeps them; only admin reads it. */
export function auditSubject(node: string): string {
  return `${SUBJECT_ROOT}.audit.${node}`;
}

export const AUDIT_STREAM = "oneos_audit";

export const BUCKETS = {
  nodes: "oneos_nodes",
  procs: "oneos_procs",
  pids: "oneos_pids",
  /** User records with their password hashes: runtimes and admin only. */
  users: "oneos_users",
  /** The session-signing secret: runtimes only. */
  auth: "oneos_auth",
} as const;
