import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Socket } from "node:net";
import { connectReader, DirectServer, writeFrame, type DirectOffer } from "../pseudokernel/index.js";
import { BLOCK_ID } from "./block-store.js";
import { isNodeName } from "./leases.js";
import { peerBlock } from "./peer-service.js";

/**
 * Blocks between nodes' caches over direct TCP links (the cooperative cache's data path).
 *
 * A 1 MiB block asked over NATS crosses two servers and is parsed by nats.js into a growing buffer:
 * a cold read from another node's cache made ≈ 100 MB/s with both cores busy. Here a node that reads
 * another node's blocks asks it once over NATS for a link (`oneos.cloudfs.<node>.blocklink`: an offer
 * of host, port and a one-time token, as the streams' direct links make), connects, and then sends
 * block ids on that connection and reads the answers straight into buffers of their own size.
 *
 * Frames (length-prefixed, pseudokernel's framing): a request is `u32 tag` + the block id (22 bytes);
 * an answer is `u32 tag` + `u8 found` + the block's bytes. A node that offers no link (the desktop's
 * core, an older daemon) or whose link breaks is asked over NATS (`peerBlock`), as before.
 */

/** Where a node offers a block link: the request is empty, the answer a JSON `LinkOffer`. */
export const blockLinkSubject = (node: string): string => `oneos.cloudfs.${node}.blocklink`;

interface LinkOffer {
  readonly host: string;
  readonly port: number;
  /** base64 of the 16-byte token. */
  readonly token: string;
  /** The registration's id on the holder's server. */
  readonly id: string;
}

/** How long a node that offered no link is asked over NATS before it is offered one again. */
const NO_LINK_RETRY_MS = 10_000;
/** Answers being read from the caches at once per link, and unsent bytes beyond which none starts. */
const MAX_SERVING = 16;
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;
/** Requests waiting per link beyond which the asker is cut off (a reader has readahead's few out). */
const MAX_QUEUED = 1024;
/** How long an offered link waits for the peer that asked to connect. */
const UNCLAIMED_OFFER_MS = 30_000;
const REQUEST_HEADER_BYTES = 4;
const ANSWER_HEADER_BYTES = 5;
const BLOCK_ID_BYTES = 22;

/** Our end of a link to one peer: requests in flight by tag. */
interface Link {
  readonly socket: Socket;
  readonly waiting: Map<number, (data: Buffer | undefined) => void>;
}

export class BlockLinks {
  readonly #nc: NatsConnection;
  readonly #nodeId: string;
  readonly #server: DirectServer | undefined;
  readonly #sub: Subscription | undefined;
  readonly #links = new Map<string, Promise<Link | undefined>>();
  /** Peers that offered no link, and when they last failed to. */
  readonly #noLink = new Map<string, number>();
  #nextTag = 1;
  #nextRegistration = 1;
  #closed = false;

  private constructor(nc: NatsConnection, nodeId: string, server: DirectServer | undefined, serve: (id: string) => Promise<Uint8Array | undefined>) {
    this.#nc = nc;
    this.#nodeId = nodeId;
    this.#server = server;
    this.#sub =
      server === undefined
        ? undefined
        : nc.subscribe(blockLinkSubject(nodeId), {
            callback: (err, msg) => {
              if (err !== null || this.#closed) return;
              try {
                msg.respond(JSON.stringify(this.#offer(serve)));
              } catch {
                // The asker is gone: it reads over NATS after its timeout.
              }
            },
          });
  }

  /**
   * Serves this node's blocks (`serve`: what its caches hold) on links accepted on `host`, and reads
   * other nodes' blocks over links to them. Without `host` it only reads.
   */
  static async start(nc: NatsConnection, nodeId: string, host: string | undefined, serve: (id: string) => Promise<Uint8Array | undefined>): Promise<BlockLinks> {
    const server = host === undefined ? undefined : await DirectServer.listen(host);
    return new BlockLinks(nc, nodeId, server, serve);
  }

  /** A registration on our server for one peer's connection, answering its block requests. */
  #offer(serve: (id: string) => Promise<Uint8Array | undefined>): LinkOffer {
    const server = this.#server!;
    const id = `blocks-${this.#nextRegistration++}`;
    let socket: Socket | undefined;
    // Requests are served a few at a time, and not while the socket holds many unsent bytes: a peer
    // that asks faster than it reads waits, and one that piles up requests beyond any reader's is cut.
    const queue: [tag: number, blockId: string][] = [];
    let serving = 0;
    const pump = (): void => {
      const s = socket;
      while (s !== undefined && !s.destroyed && queue.length > 0 && serving < MAX_SERVING && s.writableLength < MAX_UNSENT_BYTES) {
        const [tag, blockId] = queue.shift()!;
        serving++;
        void serve(blockId)
          .catch(() => undefined)
          .then((data) => {
            serving--;
            if (s.destroyed) return;
            const header = Buffer.allocUnsafe(ANSWER_HEADER_BYTES);
            header.writeUInt32BE(tag, 0);
            header[4] = data === undefined ? 0 : 1;
            writeFrame(s, header, data);
            pump();
          });
      }
    };
    const offer: DirectOffer = server.register(
      id,
      (frame) => {
        if (socket === undefined) return;
        const tag = frame.length === REQUEST_HEADER_BYTES + BLOCK_ID_BYTES ? Buffer.from(frame.buffer, frame.byteOffset, frame.length).readUInt32BE(0) : undefined;
        const blockId = tag === undefined ? "" : Buffer.from(frame.buffer, frame.byteOffset + REQUEST_HEADER_BYTES, BLOCK_ID_BYTES).toString("latin1");
        if (tag === undefined || !BLOCK_ID.test(blockId) || queue.length >= MAX_QUEUED) return void socket.destroy();
        queue.push([tag, blockId]);
        pump();
      },
      {
        onSocket: (s) => {
          socket = s;
          s.on("drain", pump);
          clearTimeout(unclaimed);
        },
        onClose: () => server.unregister(id),
      },
    );
    // An offer nobody takes up is withdrawn.
    const unclaimed = setTimeout(() => {
      if (socket === undefined) server.unregister(id);
    }, UNCLAIMED_OFFER_MS);
    unclaimed.unref();
    return { host: offer.host, port: offer.port, token: offer.token.toString("base64"), id };
  }

  /**
   * A block from `node`'s caches: its bytes, or undefined when it has none, is gone, or is slower than
   * `timeoutMs` (the caller then reads JetStream).
   */
  async get(node: string, id: string, timeoutMs: number): Promise<Buffer | undefined> {
    if (node === this.#nodeId || this.#closed) return undefined;
    const link = await this.#link(node, timeoutMs);
    if (link === undefined) return peerBlock(this.#nc, node, id, timeoutMs);
    const tag = this.#nextTag++ >>> 0;
    const request = Buffer.allocUnsafe(REQUEST_HEADER_BYTES + BLOCK_ID_BYTES);
    request.writeUInt32BE(tag, 0);
    request.write(id, REQUEST_HEADER_BYTES, "latin1");
    return new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (data: Buffer | undefined): void => {
        clearTimeout(timer);
        link.waiting.delete(tag);
        resolve(data);
      };
      link.waiting.set(tag, done);
      writeFrame(link.socket, request);
    });
  }

  #link(node: string, timeoutMs: number): Promise<Link | undefined> {
    const failed = this.#noLink.get(node);
    if (failed !== undefined && Date.now() - failed < NO_LINK_RETRY_MS) return Promise.resolve(undefined);
    let link = this.#links.get(node);
    if (link === undefined) {
      link = this.#dial(node, timeoutMs).then((l) => {
        if (l === undefined) {
          this.#noLink.set(node, Date.now());
          this.#links.delete(node);
        }
        return l;
      });
      this.#links.set(node, link);
    }
    return link;
  }

  async #dial(node: string, timeoutMs: number): Promise<Link | undefined> {
    if (!isNodeName(node)) return undefined;
    let offer: LinkOffer;
    try {
      const reply = await this.#nc.request(blockLinkSubject(node), "", { timeout: timeoutMs });
      offer = parseOffer(reply.data);
    } catch {
      return undefined;
    }
    const waiting = new Map<number, (data: Buffer | undefined) => void>();
    const mine = this.#links.get(node);
    try {
      const socket = await connectReader({ host: offer.host, port: offer.port, token: Buffer.from(offer.token, "base64") }, offer.id, (frame) => {
        if (frame.length < ANSWER_HEADER_BYTES) return void socket.destroy();
        waiting.get(frame.readUInt32BE(0))?.(frame[4] === 1 ? frame.subarray(ANSWER_HEADER_BYTES) : undefined);
      });
      socket.once("close", () => {
        if (this.#links.get(node) === mine) this.#links.delete(node);
        for (const done of [...waiting.values()]) done(undefined);
      });
      if (this.#closed) socket.destroy();
      return { socket, waiting };
    } catch {
      return undefined;
    }
  }

  /** Peers this node has a block link to now. */
  async linkedPeers(): Promise<string[]> {
    const peers: string[] = [];
    for (const [node, link] of this.#links) if ((await link)?.socket.destroyed === false) peers.push(node);
    return peers.sort();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sub?.unsubscribe();
    for (const link of this.#links.values()) void link.then((l) => l?.socket.destroy());
    this.#links.clear();
    await this.#server?.close();
  }
}

/** A link offer, if `data` is one; throws otherwise. */
function parseOffer(data: Uint8Array): LinkOffer {
  const v = JSON.parse(new TextDecoder().decode(data)) as Partial<LinkOffer>;
  if (typeof v.host !== "string" || typeof v.port !== "number" || typeof v.token !== "string" || typeof v.id !== "string") {
    throw new Error("malformed block link offer");
  }
  return v as LinkOffer;
}
