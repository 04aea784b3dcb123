import type { KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decode } from "./codec.js";
import { guarded } from "./nats-handlers.js";
import { parseNodeRecord, type NodeRecord, type NodeState } from "./messages.js";
import { followBucket } from "./follow-bucket.js";
import { HEARTBEAT_WILDCARD } from "./subjects.js";

/**
 * Node names in natural order (n2 before n10), as `localeCompare` with `numeric` sorts them, without
 * ICU: starting its collator takes about 10 ms, a twentieth of a CLI call.
 */
export function compareNodeNames(a: string, b: string): number {
  const x = a.split(/(\d+)/);
  const y = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const [p, q] = [x[i]!, y[i]!];
    if (p === q) continue;
    // The split puts the runs of digits at the odd indices.
    const byNumber = i % 2 === 1 ? Number(p) - Number(q) : 0;
    return byNumber !== 0 ? byNumber : p < q ? -1 : 1;
  }
  return x.length - y.length;
}

/** A node not heard from for this long is `suspect`; twice as long, `down`. Heartbeats come each second. */
export const SUSPECT_AFTER_MS = 2000;
export const DOWN_AFTER_MS = 4000;
/**
 * A record stamped further ahead of our clock than this is refused: NTP keeps real nodes within
 * milliseconds, and one far-future stamp (a hostile or broken sender) would make every later real
 * heartbeat of that node look older, so the node would stay in whatever state the stamp claimed.
 */
const MAX_CLOCK_AHEAD_MS = 60_000;

/** A node record with the state a reader judges it to be in now. */
export type NodeView = NodeRecord & { readonly effective: NodeState };

/**
 * The cluster's nodes as one process sees them: the nodes bucket (durable: labels, the `down` marks the
 * leader writes) merged with the core-NATS heartbeats each runtime publishes every second.
 *
 * Liveness comes from the core heartbeats: when a server is lost, JetStream streams led by it stall
 * for the length of a raft election (4–9 s in nats-server 2.9), and heartbeats written to KV stall with
 * them; core pub/sub keeps flowing through the surviving servers.
 */
export class NodeTable {
  readonly records = new Map<string, NodeRecord>();
  /** Local time of each node's newest heartbeat. */
  readonly lastSeen = new Map<string, number>();
  #watcher: { stop(): void } | undefined;
  #subscription: Subscription | undefined;
  /**
   * Nodes with a record in the bucket. Core heartbeats count only for these: anyone may publish on the
   * heartbeat subject, and a heartbeat per made-up name would grow the table (and the leader's writes
   * of `down` marks) without bound. A runtime's every heartbeat also writes its record: it is known at once.
   */
  #inBucket = new Set<string>();

  /** Starts following the bucket and the heartbeats; `stop()` ends both. */
  static watch(kv: KV, nc: NatsConnection): NodeTable {
    const table = new NodeTable();
    table.#subscription = nc.subscribe(HEARTBEAT_WILDCARD, {
      // Anything but a valid heartbeat is dropped.
      callback: guarded((msg) => {
        const record = parseNodeRecord(decode(msg.data));
        if (table.#inBucket.has(record.name)) table.apply(record, Date.now());
      }),
    });
    table.#watcher = followBucket(kv, (entry) => {
      if (entry.operation !== "PUT") {
        table.#inBucket.delete(entry.key);
        table.records.delete(entry.key);
        table.lastSeen.delete(entry.key);
        return;
      }
      try {
        const record = parseNodeRecord(decode(entry.value));
        if (record.name === entry.key) table.#inBucket.add(record.name);
        // A stored record is as fresh as its own timestamp says (never fresher than now).
        table.apply(record, Math.min(Date.now(), record.heartbeat));
      } catch {
        // not a valid node record: ignored
      }
    });
    return table;
  }

  /** Takes a record seen at local time `seenAt`, unless it is older than what we have. */
  apply(record: NodeRecord, seenAt: number): void {
    if (record.heartbeat > Date.now() + MAX_CLOCK_AHEAD_MS) return;
    const current = this.records.get(record.name);
    if (current !== undefined) {
      const older = record.heartbeat < current.heartbeat;
      // The leader's `down` mark carries the last heartbeat it saw: it wins over that same beat.
      const sameBeatMarkedDown = record.heartbeat === current.heartbeat && record.state === "down";
      if (older || (record.heartbeat === current.heartbeat && !sameBeatMarkedDown)) return;
    }
    this.records.set(record.name, record);
    this.lastSeen.set(record.name, Math.max(seenAt, this.lastSeen.get(record.name) ?? 0));
  }

  /** Milliseconds since the node's newest heartbeat, by our clock. */
  silence(name: string, now: number): number {
    return now - (this.lastSeen.get(name) ?? 0);
  }

  state(name: string, now: number): NodeState {
    const record = this.records.get(name);
    if (record === undefined) return "down";
    if (record.state !== "ready") return record.state;
    const silence = this.silence(name, now);
    if (silence > DOWN_AFTER_MS) return "down";
    if (silence > SUSPECT_AFTER_MS) return "suspect";
    return "ready";
  }

  /** The names of the nodes ready now, in code-point order: the first is the leader where one is needed. */
  ready(now: number): string[] {
    return [...this.records.keys()].filter((name) => this.state(name, now) === "ready").sort();
  }

  /** How many nodes are not down now (ready, or suspect: late with a heartbeat on a busy machine). */
  upCount(now: number): number {
    return [...this.records.keys()].filter((name) => this.state(name, now) !== "down").length;
  }

  view(now: number): NodeView[] {
    return [...this.records.values()]
      .map((r) => ({ ...r, effective: this.state(r.name, now) }))
      .sort((a, b) => compareNodeNames(a.name, b.name));
  }

  stop(): void {
    this.#watcher?.stop();
    this.#subscription?.unsubscribe();
  }
}
