import { BUCKETS, inboxPrefixOf, KernelError, NODE_VERBS, nodeSubject } from "../pseudokernel/index.js";
import { SERVICES_LIST_SUBJECT } from "../scheduler/index.js";

/** What one identity may publish and subscribe to (nats-server `permissions`, allow-lists only). */
export interface SubjectPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/** Buckets a shell mirrors (read-only): the node and process tables. */
const SHELL_MIRRORED_BUCKETS = [BUCKETS.nodes, BUCKETS.procs] as const;
/** The scheduler bucket holds service records too: a shell reads only the strategy key. */
const SCHEDULER_BUCKET = "oneos_scheduler";
const STRATEGY_KEY = "settings.strategy";
/** CloudFS's buckets (vfs-fuse/buckets.ts): the desktop's file manager reads and writes them. */
const CLOUDFS_BUCKETS = ["cloudfs-meta", "cloudfs-blocks", "cloudfs-cas"] as const;
/** The netstack's port registry (runtime/netstack): the desktop's Ports window reads it. */
const PORTS_BUCKET = "oneos_ports";

/** JetStream API calls that read a KV bucket: watch (an ordered consumer), get, status. */
function kvReadApi(bucket: string, key = ">"): string[] {
  const stream = `KV_${bucket}`;
  return [
    // nats.js names the consumer and its filter in the subject (nats-server ≥ 2.9), so a key can be fixed here.
    `$JS.API.CONSUMER.CREATE.${stream}.*.$KV.${bucket}.${key}`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    // Ordered consumers answer the server's flow-control probes here.
    `$JS.FC.${stream}.>`,
    ...(key === ">"
      ? [`$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`]
      : []),
  ];
}

/** Reading plus writing a KV bucket (and creating it with the runtimes' settings if it is missing). */
function kvReadWriteApi(bucket: string): string[] {
  return [...kvReadApi(bucket), `$JS.API.STREAM.CREATE.KV_${bucket}`, `$KV.${bucket}.>`];
}

/**
 * The permission matrix. Only allow-lists: whatever is not named is refused, so a subject added
 * later is closed to shells and the desktop until someone opens it here.
 *
 * - `node-<name>`: a runtime and the children it starts with a connection (the CloudFS daemon): the
 *   whole kernel, JetStream and every reply prefix. Nodes are trusted: they hold the users' password
 *   hashes and the session secret.
 * - `admin`: the owner of ONEOS_HOME on the cluster's machine: everything (the CLI's verbs, `auth.issue`).
 * - `shell`: the public kernel verbs, streams, its own replies, and read-only mirrors of the node and
 *   process tables — no KV writes, no users/auth buckets, no audit, no node's internal subjects.
 * - `desktop`: what the web desktop server uses: cluster views, `signal`, logins and session refresh
 *   for the users who log in to it (never `issue`), the process and port tables read-only, and CloudFS
 *   read-write (its file manager).
 */
export function permissionsOf(identity: string): SubjectPermissions {
  if (identity === "admin") return { publish: [">"], subscribe: [">"] };
  if (identity.startsWith("node-")) {
    const replyPrefixes = ["_INBOX", "_INBOX_nodes", inboxPrefixOf("admin"), inboxPrefixOf("desktop")].map((p) => `${p}.>`);
    return {
      publish: ["oneos.>", "$JS.>", "$KV.>", "$O.>", ...replyPrefixes],
      subscribe: ["oneos.>", `${inboxPrefixOf(identity)}.>`],
    };
  }
  if (identity === "shell") {
    return {
      publish: [
        // Every kernel verb on any node: the session token decides what the caller may do.
        ...NODE_VERBS.map((verb) => nodeSubject("*", verb)),
        "oneos.cluster.>",
        // The services list, read-only (`oneos services` inside the shell).
        SERVICES_LIST_SUBJECT,
        "oneos.auth.login",
        "oneos.auth.refresh",
        "oneos.auth.users",
        "oneos.stream.>",
        ...SHELL_MIRRORED_BUCKETS.flatMap((bucket) => kvReadApi(bucket)),
        ...kvReadApi(SCHEDULER_BUCKET, STRATEGY_KEY),
      ],
      subscribe: ["_INBOX.>", "oneos.stream.>", "oneos.registered.*.signal", "oneos.heartbeat.*"],
    };
  }
  if (identity === "desktop") {
    return {
      publish: [
        "oneos.cluster.>",
        nodeSubject("*", "signal"),
        nodeSubject("*", "tail"),
        "oneos.auth.login",
        "oneos.auth.refresh",
        ...[BUCKETS.nodes, BUCKETS.procs, PORTS_BUCKET].flatMap((bucket) => kvReadApi(bucket)),
        ...CLOUDFS_BUCKETS.flatMap((bucket) => kvReadWriteApi(bucket)),
        // Account usage (counts and bytes, no contents): nats.js asks before creating a bucket.
        "$JS.API.INFO",
        // Its Files window is a CloudFS writer like a node: lease recalls, status, change notices,
        // and the answers to the recalls and status requests that nodes and the CLI send it.
        "oneos.cloudfs.>",
        `${inboxPrefixOf("node-*")}.>`,
        `${inboxPrefixOf("admin")}.>`,
      ],
      subscribe: [
        `${inboxPrefixOf("desktop")}.>`,
        "oneos.cloudfs.*.recall",
        "oneos.cloudfs.*.status",
        "oneos.cloudfs.*.block",
        "oneos.cloudfs.*.opened",
        "oneos.cloudfs.*.accessed",
        "oneos.cloudfs.changes",
      ],
    };
  }
  // Never a default: an empty allow-list means "no restriction" to nats-server.
  throw new KernelError("EINVAL", `no permissions are defined for identity '${identity}'`);
}
