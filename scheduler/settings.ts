import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { STRATEGIES, type Strategy } from "./placement-scores.js";

/** KV bucket of the scheduler's cluster settings and service records (created by the runtimes). */
export const SCHEDULER_BUCKET = "oneos_scheduler";
const STRATEGY_KEY = "settings.strategy";
/** Pause before watching again after a watch broke (a stream leader election after a lost server). */
const REWATCH_MS = 500;

/** Creates (runtimes, with `replicas`) or binds to (clients) the scheduler bucket. */
export async function openSchedulerBucket(nc: NatsConnection, options: { replicas?: number } = {}): Promise<KV> {
  const kvm = new Kvm(nc);
  return options.replicas === undefined
    ? await kvm.open(SCHEDULER_BUCKET, { bindOnly: true })
    : await kvm.create(SCHEDULER_BUCKET, { replicas: options.replicas, history: 1 });
}

export function parseStrategy(text: string): Strategy | null {
  return (STRATEGIES as readonly string[]).includes(text) ? (text as Strategy) : null;
}

export async function readStrategy(kv: KV): Promise<Strategy> {
  const entry = await kv.get(STRATEGY_KEY);
  if (entry === null || entry.operation !== "PUT") return "spread";
  return parseStrategy(entry.string()) ?? "spread";
}

export async function writeStrategy(kv: KV, strategy: Strategy): Promise<void> {
  await kv.put(STRATEGY_KEY, strategy);
}

/**
 * The cluster's scheduler settings as one process sees them, kept current by a watch (spread until the
 * setting says otherwise). `stop()` ends the watch.
 */
export class SchedulerSettings {
  strategy: Strategy = "spread";
  #stopped = false;
  #watcher: { stop(): void } | undefined;

  static follow(kv: KV): SchedulerSettings {
    const settings = new SchedulerSettings();
    void (async () => {
      while (!settings.#stopped) {
        try {
          const watcher = await kv.watch({ key: STRATEGY_KEY });
          settings.#watcher = watcher;
          if (settings.#stopped) watcher.stop();
          for await (const entry of watcher) {
            settings.strategy = entry.operation === "PUT" ? (parseStrategy(entry.string()) ?? "spread") : "spread";
          }
        } catch {
          // not available now: try again
        }
        if (!settings.#stopped) await new Promise((r) => setTimeout(r, REWATCH_MS));
      }
    })();
    return settings;
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.stop();
  }
}
