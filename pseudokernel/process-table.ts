import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decode, encode } from "./codec.js";
import { followBucket } from "./follow-bucket.js";
import { parseClusterPs, parseProcessRecord, type ProcessRecord } from "./messages.js";
import { CLUSTER_PS_LIVE_SUBJECT } from "./subjects.js";

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

/**
 * Every runtime's running processes, from memory (`CLUSTER_PS_LIVE_SUBJECT`): current even before a
 * process's first record is written, or while the table's bucket is stalled. Gathered until the
 * answers stop for `stallMs`, `maxWaitMs` at most, or until `enough` says so; a malformed answer is skipped.
 */
export async function gatherLiveProcesses(
  nc: NatsConnection,
  options: { readonly stallMs: number; readonly maxWaitMs: number; enough?(gathered: readonly ProcessRecord[], answers: number): boolean },
): Promise<ProcessRecord[]> {
  const out: ProcessRecord[] = [];
  try {
    const replies = await nc.requestMany(CLUSTER_PS_LIVE_SUBJECT, encode({ type: "ps" }), {
      strategy: "stall",
      stall: options.stallMs,
      maxWait: options.maxWaitMs,
    });
    let answers = 0;
    for await (const msg of replies) {
      answers++;
      try {
        out.push(...parseClusterPs(decode(msg.data)));
      } catch {
        // a malformed answer is skipped
      }
      if (options.enough?.(out, answers) === true) break;
    }
  } catch {
    // no runtime answered: what came so far
  }
  return out;
}
