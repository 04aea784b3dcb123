import type { NatsConnection } from "@nats-io/transport-node";
import { connectDirect, type DirectLink, type DirectOffer, type DirectServer } from "./direct-link.js";

/**
 * What a stream needs from the message bus: at-most-once publish and a callback subscription.
 * NATS gives exactly that; unit tests use a lossy in-memory bus to prove the stream survives drops.
 */
export interface StreamTransport {
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, onMessage: (data: Uint8Array) => void): { unsubscribe(): void };
  /** Set where this process accepts direct links for its stream readers (runtimes). */
  readonly directServer?: DirectServer;
  /** Set where this process may open direct links for its stream writers. */
  readonly connectDirect?: (offer: DirectOffer, id: string) => Promise<DirectLink>;
}

/**
 * A `StreamTransport` over one NATS connection (callback subscriptions: no per-message promise).
 * With `directServer`, readers in this process offer direct links; writers always may take one.
 */
export function natsTransport(nc: NatsConnection, options: { directServer?: DirectServer } = {}): StreamTransport {
  return {
    ...(options.directServer !== undefined ? { directServer: options.directServer } : {}),
    connectDirect,
    publish(subject, data) {
      try {
        nc.publish(subject, data);
      } catch {
        // A closed or draining connection: the message is lost, as NATS may lose any; the stream's
        // timers turn lasting silence into EPEERLOST.
      }
    },
    subscribe(subject, onMessage) {
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err === null) onMessage(msg.data);
        },
      });
      return {
        unsubscribe() {
          sub.unsubscribe();
        },
      };
    },
  };
}
