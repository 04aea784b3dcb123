import type { KV } from "@nats-io/kv";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
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
 * answers stop for `stallMs`, `maxWaitMs` at most, until `enough` says so, or until as many answers
 * came as `expected` resolves to (the runtimes that are up: when it resolves after the last answer,
 * nobody waits for the stall). A malformed answer is skipped.
 */
export async function gatherLiveProcesses(
  nc: NatsConnection,
  options: {
    readonly stallMs: number;
    readonly maxWaitMs: number;
    enough?(gathered: readonly ProcessRecord[], answers: number): boolean;
    readonly expected?: Promise<number | undefined>;
  },
): Promise<ProcessRecord[]> {
  const out: ProcessRecord[] = [];
  try {
    const replies = await nc.requestMany(CLUSTER_PS_LIVE_SUBJECT, encode({ type: "ps" }), {
      strategy: "stall",
      stall: options.stallMs,
      maxWait: options.maxWaitMs,
    });
    let answers = 0;
    let expected: number | undefined;
    // Resolves (to done) once the answers reach the expected count, however late that count comes.
    let reached = (): void => {};
    const allAnswered = new Promise<IteratorResult<Msg>>((resolve) => (reached = () => resolve({ done: true, value: undefined })));
    void options.expected?.then((n) => {
      expected = n;
      if (n !== undefined && answers >= n) reached();
    });
    const iterator = replies[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([iterator.next(), allAnswered]);
      if (next.done === true) break;
      answers++;
      try {
        out.push(...parseClusterPs(decode(next.value.data)));
      } catch {
        // a malformed answer is skipped
      }
      if (options.enough?.(out, answers) === true || (expected !== undefined && answers >= expected)) break;
    }
    await iterator.return?.();
  } catch {
    // no runtime answered: what came so far
  }
  return out;
}
