import type { KV } from "@nats-io/kv";
import { decode } from "./codec.js";
import { followBucket } from "./follow-bucket.js";
import { parseProcessRecord, type ProcessRecord } from "./messages.js";

/**
 * A live mirror of the process-table bucket, kept by one watcher. Runtimes hold one so `ps` is answered
 * from memory: a JetStream election after a lost server delays new writes, not what we already know.
 */
export class ProcessTable {
  readonly records = new Map<number, ProcessRecord>();
  #watcher: { stop(): void } | undefined;

  static watch(kv: KV): ProcessTable {
    const table = new ProcessTable();
    table.#watcher = followBucket(kv, (entry) => {
      const pid = Number(entry.key);
      if (entry.operation !== "PUT") {
        table.records.delete(pid);
        return;
      }
      try {
        const record = parseProcessRecord(decode(entry.value));
        if (record.pid === pid) table.records.set(pid, record);
      } catch {
        // not a valid record: ignored
      }
    });
    return table;
  }

  /** Every record, with processes of the given down nodes reported `lost`. */
  list(downNodes: ReadonlySet<string>): ProcessRecord[] {
    return [...this.records.values()]
      .map((p) => withLiveness(p, downNodes))
      .sort((a, b) => a.pid - b.pid);
  }

  stop(): void {
    this.#watcher?.stop();
  }
}

/** A process still running or stopped on a node that is down is lost, whatever its record says yet. */
export function withLiveness(p: ProcessRecord, downNodes: ReadonlySet<string>): ProcessRecord {
  return (p.state === "running" || p.state === "stopped") && downNodes.has(p.node) ? { ...p, state: "lost" } : p;
}
