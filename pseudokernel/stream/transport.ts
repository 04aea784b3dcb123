import type { NatsConnection } from "@nats-io/transport-node";
import type { Socket } from "node:net";
import { connectDirect, connectReader, type DirectLink, type DirectOffer, type DirectServer } from "./direct-link.js";

/**
 * What a stream needs from the message bus: at-most-once publish and a callback subscription.
 * NATS gives exactly that; unit tests use a lossy in-memory bus to prove the stream survives drops.
 */
export interface StreamTransport {
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, onMessage: (data: Uint8Array) => void): { unsubscribe(): void };
  /**
   * Delivers every message, in order, to a subscriber that exists when it arrives (a TCP link): a writer
   * does not resend on a timer there, which would only queue duplicates behind the originals. (A writer
   * with `credit` must then only be made once its reader has subscribed.)
   */
  readonly reliable?: boolean;
  /** Publishes `header` and `payload` as one message without joining them first (a transport that writes to a socket). */
  readonly publishParts?: (subject: string, header: Uint8Array, payload: Uint8Array) => void;
  /** Set where this process accepts direct links for its stream readers (runtimes). */
  readonly directServer?: DirectServer;
  /** Set where this process may open direct links for its stream writers. */
  readonly connectDirect?: (offer: DirectOffer, id: string) => Promise<DirectLink>;
  /** Set where this process may open connections to read (a peer link's), to the same endpoints. */
  readonly connectReader?: (offer: DirectOffer, id: string, onFrame: (frame: Buffer) => void) => Promise<Socket>;
}

/**
 * A `StreamTransport` over one NATS connection (callback subscriptions: no per-message promise).
 * With `directServer`, readers in this process offer direct links. Writers take an offered link only
 * to an endpoint `trustOffer` accepts — anyone who can publish on a stream's subjects can send an
 * offer, and a writer following it would send its bytes there; without `trustOffer`, never.
 */
export function natsTransport(
  nc: NatsConnection,
  options: { directServer?: DirectServer; trustOffer?: (offer: DirectOffer) => boolean } = {},
): StreamTransport {
  const trust = options.trustOffer;
  return {
    ...(options.directServer !== undefined ? { directServer: options.directServer } : {}),
    ...(trust !== undefined
      ? {
          connectDirect: async (offer: DirectOffer, id: string): Promise<DirectLink> => {
            if (!trust(offer)) throw new Error(`direct link to ${offer.host}:${offer.port}: not a runtime's endpoint`);
            return await connectDirect(offer, id);
          },
          connectReader: async (offer: DirectOffer, id: string, onFrame: (frame: Buffer) => void): Promise<Socket> => {
            if (!trust(offer)) throw new Error(`peer link to ${offer.host}:${offer.port}: not a runtime's endpoint`);
            return await connectReader(offer, id, onFrame);
          },
        }
      : {}),
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
