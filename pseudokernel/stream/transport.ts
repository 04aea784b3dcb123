import type { NatsConnection } from "@nats-io/transport-node";

/**
 * What a stream needs from the message bus: at-most-once publish and a callback subscription.
 * NATS gives exactly that; unit tests use a lossy in-memory bus to prove the stream survives drops.
 */
export interface StreamTransport {
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, onMessage: (data: Uint8Array) => void): { unsubscribe(): void };
}

/** A `StreamTransport` over one NATS connection (callback subscriptions: no per-message promise). */
export function natsTransport(nc: NatsConnection): StreamTransport {
  return {
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
