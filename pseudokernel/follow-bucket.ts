import type { KV, KvWatchEntry } from "@nats-io/kv";

/** Pause before watching again after the watch could not start or broke off. */
const REWATCH_DELAY_MS = 500;

/**
 * Follows every change of a bucket for as long as `isStopped()` is false, starting again (with the last
 * values first) whenever the watch cannot be created or breaks — e.g. while the bucket's stream elects
 * a new leader after a lost server. A fresh watch delivers each key's last entry, delete markers too, so
 * a deletion missed while not watching still arrives. `key` narrows it (a subject filter such as
 * `service.>`). Returns at once; `stop()` of the result ends it.
 */
export function followBucket(kv: KV, onEntry: (entry: KvWatchEntry) => void, key?: string): { stop(): void } {
  let stopped = false;
  let current: { stop(): void } | undefined;
  void (async () => {
    while (!stopped) {
      try {
        const watcher = await kv.watch(key !== undefined ? { key } : {});
        current = watcher;
        if (stopped) watcher.stop();
        for await (const entry of watcher) {
          if (stopped) break;
          onEntry(entry);
        }
      } catch {
        // not available now: try again
      }
      if (!stopped) await new Promise((r) => setTimeout(r, REWATCH_DELAY_MS));
    }
  })();
  return {
    stop() {
      stopped = true;
      current?.stop();
    },
  };
}
