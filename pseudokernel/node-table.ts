import type { KV } from "@nats-io/kv";
import { decode } from "./codec.js";
import { parseNodeRecord, type NodeRecord } from "./messages.js";

/**
 * A live copy of the nodes bucket, kept by one long-lived watcher. Tracks when each record was last
 * seen changing by OUR clock, so a node whose clock is off is not judged by its own timestamps.
 */
export class NodeTable {
  readonly records = new Map<string, NodeRecord>();
  /** Local time at which each node's record last changed. */
  readonly lastSeen = new Map<string, number>();
  #stopped = false;
  #stop: (() => void) | undefined;

  static async watch(kv: KV): Promise<NodeTable> {
    const table = new NodeTable();
    const watcher = await kv.watch();
    table.#stop = () => watcher.stop();
    void (async () => {
      for await (const entry of watcher) {
        if (table.#stopped) break;
        if (entry.operation !== "PUT") {
          table.records.delete(entry.key);
          table.lastSeen.delete(entry.key);
          continue;
        }
        try {
          const record = parseNodeRecord(decode(entry.value));
          table.records.set(record.name, record);
          table.lastSeen.set(record.name, Date.now());
        } catch {
          // not a valid node record: ignored
        }
      }
    })().catch(() => undefined);
    return table;
  }

  /** Milliseconds since the node's record last changed, by our clock. */
  silence(name: string, now: number): number {
    return now - (this.lastSeen.get(name) ?? now);
  }

  stop(): void {
    this.#stopped = true;
    this.#stop?.();
  }
}
