import { connectDirect, type DirectServer } from "./direct-link.js";
import type { StreamTransport } from "./transport.js";

/**
 * An in-process message bus with NATS's at-most-once behaviour made explicit: each message may be
 * dropped or duplicated by the given probabilities, and is delivered asynchronously. For unit tests.
 */
export function memoryTransport(
  options: {
    dropRate?: number;
    duplicateRate?: number;
    random?: () => number;
    directServer?: DirectServer;
    direct?: boolean;
  } = {},
): StreamTransport & { delivered: number; dropped: number; bytes: number } {
  const random = options.random ?? Math.random;
  const subscribers = new Map<string, Set<(data: Uint8Array) => void>>();
  const bus = {
    ...(options.directServer !== undefined ? { directServer: options.directServer } : {}),
    ...(options.direct === true ? { connectDirect } : {}),
    bytes: 0,
    delivered: 0,
    dropped: 0,
    publish(subject: string, data: Uint8Array) {
      bus.bytes += data.byteLength;
      const copies = random() < (options.duplicateRate ?? 0) ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        if (random() < (options.dropRate ?? 0)) {
          bus.dropped++;
          continue;
        }
        const bytes = Uint8Array.from(data);
        setImmediate(() => {
          for (const callback of subscribers.get(subject) ?? []) {
            bus.delivered++;
            callback(bytes);
          }
        });
      }
    },
    subscribe(subject: string, onMessage: (data: Uint8Array) => void) {
      let set = subscribers.get(subject);
      if (set === undefined) subscribers.set(subject, (set = new Set()));
      set.add(onMessage);
      return { unsubscribe: () => set.delete(onMessage) };
    },
  };
  return bus;
}
