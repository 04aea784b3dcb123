import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { KernelError } from "../errors.js";
import { writeFrame, type DirectOffer, type DirectServer } from "./direct-link.js";
import { KEEPALIVE_MS, PEER_TIMEOUT_MS } from "./limits.js";
import type { StreamTransport } from "./transport.js";

/**
 * A lasting link between two runtimes, for many streams and requests at once: two direct TCP
 * connections, one each way. Each side connects to the other's `DirectServer` with a token it was
 * given (as a stream's direct link does), *reads* on the connection it made and *writes* on the one it
 * accepted: Node reads the sockets it accepts 64 KiB at a time into fresh buffers, while one we connect
 * can read each big frame straight into a buffer of its own (`connectReader`). Every message is a frame
 *
 *     kind (1) · subject length (1) · subject · [request id (4), for requests and replies] · payload
 *
 * It is a `StreamTransport`: a stream whose two ends are on the two sides of one link runs over it with
 * its credit, acks and resets unchanged, one TCP hop away instead of three NATS hops (the sender's
 * server, the route, the receiver's server). As on NATS, a message for a subject nobody subscribed to
 * here is dropped. The link does not outlive either connection: when one closes, the link closes and
 * says so (`onClose`), and whoever used it fails what ran over it.
 */
export class PeerLink implements StreamTransport {
  /** TCP delivers every frame in order: streams over a link do not resend on a timer. */
  readonly reliable = true;
  /** Where we write: the connection the other side made to us; frames wait here until it has come. */
  #out: Socket | undefined;
  #queued: [Uint8Array, Uint8Array | undefined][] = [];
  /** Where we read: the connection we made. */
  #in: Socket | undefined;
  #unregister: () => void;
  #subscribers = new Map<string, (data: Uint8Array) => void>();
  #handlers = new Map<string, (data: Uint8Array) => Promise<Uint8Array>>();
  #pending = new Map<number, { resolve(data: Uint8Array): void; reject(error: Error): void; timer: NodeJS.Timeout }>();
  #nextRequest = 1;
  #closeListeners = new Set<() => void>();
  #closed = false;
  #lastSent = Date.now();
  #lastHeard = Date.now();
  /**
   * An idle link says hello every KEEPALIVE_MS; one silent for PEER_TIMEOUT_MS closes (its host gone
   * without a FIN, or the other side never connected back).
   */
  #keepalive: NodeJS.Timeout;

  private constructor(unregister: () => void) {
    this.#unregister = unregister;
    this.#keepalive = setInterval(() => {
      const now = Date.now();
      if (now - this.#lastHeard > PEER_TIMEOUT_MS) this.close();
      else if (now - this.#lastSent >= KEEPALIVE_MS) this.#send(Kind.hello, "", 0);
    }, KEEPALIVE_MS / 2);
    this.#keepalive.unref();
  }

  /** A link registered on `server` for the other side to connect to; our own connection comes later. */
  static #registered(server: DirectServer): { link: PeerLink; id: string; offer: DirectOffer } {
    const id = linkId();
    const link = new PeerLink(() => server.unregister(id));
    // Nothing comes on the connection we accept: the other side reads it.
    const offer = server.register(id, () => link.close(), {
      onClose: () => link.close(),
      onSocket: (socket) => link.#attachOut(socket),
    });
    return { link, id, offer };
  }

  /**
   * The asking side, first step: registers where the other side is to connect. Send it `id` and
   * `offer` (over an authenticated channel); with its answer, `complete` connects to it and gives the link.
   */
  static ask(server: DirectServer): {
    readonly id: string;
    readonly offer: DirectOffer;
    complete(connect: ConnectReader, peerId: string, peerOffer: DirectOffer): Promise<PeerLink>;
    cancel(): void;
  } {
    const { link, id, offer } = PeerLink.#registered(server);
    const cancel = (): void => link.close();
    return {
      id,
      offer,
      cancel,
      async complete(connect, peerId, peerOffer) {
        await link.#connect(connect, peerId, peerOffer);
        return link;
      },
    };
  }

  /**
   * The answering side: connects to the asker's offer and registers where the asker connects to us.
   * Answer with `id` and `offer`.
   */
  static async answer(
    server: DirectServer,
    connect: ConnectReader,
    askerId: string,
    askerOffer: DirectOffer,
  ): Promise<{ link: PeerLink; id: string; offer: DirectOffer }> {
    const registered = PeerLink.#registered(server);
    await registered.link.#connect(connect, askerId, askerOffer);
    return registered;
  }

  async #connect(connect: ConnectReader, peerId: string, peerOffer: DirectOffer): Promise<void> {
    try {
      this.#in = await connect(peerOffer, peerId, (frame) => this.receive(frame));
    } catch (error) {
      this.close();
      throw error;
    }
    if (this.#closed) return void this.#in.destroy();
    this.#in.once("close", () => this.close());
    this.#send(Kind.hello, "", 0); // the other side hears from us at once (it gives up on silence)
  }

  #attachOut(socket: Socket): void {
    if (this.#closed) return void socket.destroy();
    this.#out = socket;
    for (const [header, payload] of this.#queued) writeFrame(socket, header, payload);
    this.#queued = [];
  }

  get closed(): boolean {
    return this.#closed;
  }

  publish(subject: string, data: Uint8Array): void {
    this.#send(Kind.publish, subject, 0, data);
  }

  /** `header` and `payload` as one message; the payload (a stream's data) is written as it is, not copied. */
  publishParts(subject: string, header: Uint8Array, payload: Uint8Array): void {
    this.#send(Kind.publish, subject, 0, payload, header);
  }

  subscribe(subject: string, onMessage: (data: Uint8Array) => void): { unsubscribe(): void } {
    this.#subscribers.set(subject, onMessage);
    return {
      unsubscribe: () => {
        if (this.#subscribers.get(subject) === onMessage) this.#subscribers.delete(subject);
      },
    };
  }

  /** Answers the other side's requests on `subject`. A handler that throws answers with the error. */
  handle(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array>): void {
    this.#handlers.set(subject, handler);
  }

  /** Asks the other side; fails with ETIMEDOUT, or EPEERLOST when the link closes first. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new KernelError("EPEERLOST", "link closed"));
    const id = this.#nextRequest;
    this.#nextRequest = (this.#nextRequest % 0xffffffff) + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new KernelError("ETIMEDOUT", `${subject}: no answer over the link in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#send(Kind.request, subject, id, data);
    });
  }

  /** Called once when the link closes; returns a function that takes the listener back. */
  onClose(listener: () => void): () => void {
    if (this.#closed) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    // Whatever they still had to send was for streams that now fail.
    this.#in?.destroy();
    this.#out?.destroy();
    this.#queued = [];
    this.#unregister();
    for (const { reject, timer } of this.#pending.values()) {
      clearTimeout(timer);
      reject(new KernelError("EPEERLOST", "link closed"));
    }
    this.#pending.clear();
    this.#subscribers.clear();
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  }

  /** One frame: our header, then `inner` (the message's own header, if it comes apart), then `payload`. */
  #send(kind: Kind, subject: string, id: number, payload?: Uint8Array, inner?: Uint8Array): void {
    if (this.#closed) return;
    this.#lastSent = Date.now();
    const subjectLength = Buffer.byteLength(subject, "latin1");
    const ours = 2 + subjectLength + (kind === Kind.publish || kind === Kind.hello ? 0 : 4);
    const header = Buffer.allocUnsafe(ours + (inner?.byteLength ?? 0));
    header[0] = kind;
    header[1] = subjectLength;
    header.write(subject, 2, "latin1");
    if (ours > 2 + subjectLength) header.writeUInt32BE(id, 2 + subjectLength);
    if (inner !== undefined) header.set(inner, ours);
    // A full socket is not waited for: what a stream sends is bounded by its window, a request by its caller.
    if (this.#out !== undefined) writeFrame(this.#out, header, payload);
    else this.#queued.push([header, payload]);
  }

  /** One frame from the other side (the `DirectServer` calls this). A malformed one is a broken peer: the link closes. */
  receive(frame: Uint8Array): void {
    const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const kind = buf[0];
    const subjectLength = buf[1];
    const withId = kind === Kind.request || kind === Kind.reply || kind === Kind.failure;
    const start = 2 + (subjectLength ?? 0) + (withId ? 4 : 0);
    if (kind === undefined || subjectLength === undefined || buf.length < start || kind > Kind.failure) return this.close();
    this.#lastHeard = Date.now();
    const subject = buf.toString("latin1", 2, 2 + subjectLength);
    const id = withId ? buf.readUInt32BE(2 + subjectLength) : 0;
    const payload = buf.subarray(start);
    switch (kind) {
      case Kind.hello:
        return;
      case Kind.publish:
        return this.#subscribers.get(subject)?.(payload);
      case Kind.request:
        return void this.#answer(subject, id, payload);
      case Kind.reply:
      case Kind.failure: {
        const pending = this.#pending.get(id);
        if (pending === undefined) return; // timed out already
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        if (kind === Kind.reply) pending.resolve(payload);
        else pending.reject(new KernelError("EIO", `${subject}: ${payload.toString("utf8")}`));
        return;
      }
    }
  }

  async #answer(subject: string, id: number, payload: Uint8Array): Promise<void> {
    const handler = this.#handlers.get(subject);
    try {
      if (handler === undefined) throw new Error("nobody answers this subject over the link");
      this.#send(Kind.reply, subject, id, await handler(payload));
    } catch (error) {
      this.#send(Kind.failure, subject, id, Buffer.from(error instanceof Error ? error.message : String(error), "utf8"));
    }
  }
}

/** How a side makes the connection it reads (the stream transport's `connectReader`, which checks the offer). */
export type ConnectReader = (offer: DirectOffer, id: string, onFrame: (frame: Buffer) => void) => Promise<Socket>;

const Kind = { hello: 0, publish: 1, request: 2, reply: 3, failure: 4 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

/** A registration id on a `DirectServer` (stream ids share its namespace; the prefix keeps them apart). */
function linkId(): string {
  return `link-${randomBytes(12).toString("hex")}`;
}
