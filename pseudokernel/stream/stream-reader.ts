import { Readable } from "node:stream";
import { KernelError } from "../errors.js";
import { decodeFrame, encodeAck, encodeOffer, encodeReset, PING_FRAME, type Frame } from "./frame.js";
import {
  CONNECT_TIMEOUT_MS,
  DELAYED_ACK_MS,
  KEEPALIVE_MS,
  LINGER_MS,
  PEER_TIMEOUT_MS,
  WINDOW_BYTES,
} from "./limits.js";
import { streamControlSubject, streamDataSubject } from "../subjects.js";
import type { StreamTransport } from "./transport.js";

/**
 * Until the writer's first word, the reader repeats its opening credit, first after this long, then
 * doubling up to HELLO_MAX_MS. The first copies are often lost: a subscription made on another server
 * takes a moment to propagate over the route, and NATS drops what has no known interest.
 */
const HELLO_FIRST_MS = 1;
const HELLO_MAX_MS = 250;

/**
 * The receiving end of a stream, as a Node `Readable`. Credit follows consumption: the writer may send
 * at most `WINDOW_BYTES` beyond what this Readable's consumer has taken, so a slow consumer (a child
 * whose stdin pipe is full) stops the writer, and memory stays bounded.
 *
 * Destroying it before the end resets the stream: the writer fails with EPIPE (its source gets SIGPIPE).
 *
 * @example
 * const r = new StreamReader(natsTransport(nc), id);
 * r.pipe(child.stdin);
 */
export class StreamReader extends Readable {
  readonly id: string;
  #transport: StreamTransport;
  #subscription: { unsubscribe(): void } | undefined;
  #controlSubject: string;
  #window: number;
  /** Every byte below this has arrived, in order. */
  #expected = 0;
  #lastAckReceived = -1;
  #lastAckConsumed = -1;
  #ended = false;
  #heardFromPeer = false;
  #created = Date.now();
  #lastHeard = Date.now();
  #lastSent = 0;
  #lastNack = 0;
  #offered = false;
  #ackTimer: NodeJS.Timeout | undefined;
  #tickTimer: NodeJS.Timeout;
  #lingerTimer: NodeJS.Timeout | undefined;

  /**
   * `initial`: the stream's first bytes, delivered out of band (a netstack connect request carries a
   * client's first bytes); the writer then starts at `initial.length` (its `startOffset`).
   * `granted`: the writer was given this reader's opening credit by protocol (its `credit`), so the
   * opening ack is not sent; should the writer stay silent, the hellos still go out.
   */
  constructor(
    transport: StreamTransport,
    id: string,
    options: { windowBytes?: number; initial?: Uint8Array; granted?: boolean } = {},
  ) {
    // Readable's own high-water mark only decides when _read is called; the window bounds memory.
    super({ highWaterMark: 64 * 1024 });
    this.id = id;
    this.#transport = transport;
    this.#window = options.windowBytes ?? WINDOW_BYTES;
    if (options.initial !== undefined && options.initial.length > 0) {
      this.#expected = options.initial.length;
      this.push(Buffer.from(options.initial.buffer, options.initial.byteOffset, options.initial.byteLength));
    }
    this.#controlSubject = streamControlSubject(id);
    this.#subscription = transport.subscribe(streamDataSubject(id), (data) => this.#onMessage(data));
    this.#tickTimer = setTimeout(() => this.#hello(HELLO_FIRST_MS), HELLO_FIRST_MS);
    this.#tickTimer.unref();
    if (options.granted !== true) this.#sendAck(false);
    else {
      this.#lastAckReceived = this.#expected;
      this.#lastAckConsumed = this.#consumed();
    }
  }

  /** Repeats the opening credit with back-off until the writer answers or the connect timeout passes. */
  #hello(delay: number): void {
    if (this.destroyed || this.#heardFromPeer) return;
    if (Date.now() - this.#created > CONNECT_TIMEOUT_MS) {
      this.destroy(new KernelError("EPEERLOST", `stream ${this.id}: writer never appeared`));
      return;
    }
    this.#sendAck(false);
    const next = Math.min(delay * 2, HELLO_MAX_MS);
    this.#tickTimer = setTimeout(() => this.#hello(next), next);
    this.#tickTimer.unref();
  }

  /** Bytes received in order so far. */
  get bytesReceived(): number {
    return this.#expected;
  }

  override _read(): void {
    this.#maybeAck();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (!this.#ended && !(error instanceof KernelError && error.code === "ECONNRESET")) {
      this.#send(encodeReset("EPIPE", error?.message ?? "reader closed"));
    }
    this.#close();
    done(error);
  }

  /** Tells the writer where it may connect for the direct data path, if this process accepts links. */
  #offerDirect(): void {
    const server = this.#transport.directServer;
    if (server === undefined || this.#offered) return;
    this.#offered = true;
    const offer = server.register(this.id, (frame) => this.#onMessage(frame));
    this.#send(encodeOffer(offer.host, offer.port, offer.token));
  }

  #close(): void {
    if (this.#offered) this.#transport.directServer?.unregister(this.id);
    clearTimeout(this.#tickTimer);
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#lingerTimer);
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  #send(frame: Uint8Array): void {
    this.#lastSent = Date.now();
    this.#transport.publish(this.#controlSubject, frame);
  }

  #consumed(): number {
    return this.#ended ? this.#expected : this.#expected - this.readableLength;
  }

  #sendAck(resend: boolean): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const consumed = this.#consumed();
    this.#lastAckReceived = this.#expected;
    this.#lastAckConsumed = consumed;
    this.#send(
      encodeAck({ received: this.#expected, consumed, window: this.#window, resend, eof: this.#ended }),
    );
  }

  /** Acknowledge when a quarter window has arrived or been consumed, else soon (delayed ack). */
  #maybeAck(): void {
    if (this.#subscription === undefined) return;
    const quarter = this.#window / 4;
    if (
      this.#expected - this.#lastAckReceived >= quarter ||
      this.#consumed() - this.#lastAckConsumed >= quarter
    ) {
      this.#sendAck(false);
    } else if (
      this.#ackTimer === undefined &&
      (this.#expected !== this.#lastAckReceived || this.#consumed() !== this.#lastAckConsumed)
    ) {
      this.#ackTimer = setTimeout(() => this.#sendAck(false), DELAYED_ACK_MS);
    }
  }

  #onMessage(data: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(data);
    } catch {
      return; // dropped: retransmission recovers whatever was meant
    }
    this.#lastHeard = Date.now();
    if (!this.#heardFromPeer) {
      this.#heardFromPeer = true;
      // Handshake done: from now on the timer only watches liveness.
      clearTimeout(this.#tickTimer);
      this.#tickTimer = setInterval(() => this.#tick(), KEEPALIVE_MS / 4);
      this.#tickTimer.unref();
      // The writer's first word may be the ping it sends on creation: our opening credit went out
      // before it subscribed, so answer at once instead of at the next hello.
      if (frame.type === "ping") this.#sendAck(false);
      this.#offerDirect();
    }
    switch (frame.type) {
      case "data":
        this.#onData(frame.offset, frame.payload);
        return;
      case "eof":
        this.#onEof(frame.offset);
        return;
      case "reset":
        if (!this.#ended) {
          this.destroy(new KernelError("ECONNRESET", `stream writer aborted: ${frame.message}`));
        }
        return;
      case "ping":
        return;
      case "ack":
      case "offer":
        return; // not sent to a reader
    }
  }

  #onData(offset: number, payload: Buffer): void {
    if (this.#ended) return;
    if (offset === this.#expected) {
      this.#expected += payload.length;
      this.push(payload);
      this.#maybeAck();
    } else if (offset > this.#expected) {
      // A frame was lost in between: ask for everything from the gap, at most once per delayed-ack period.
      const now = Date.now();
      if (now - this.#lastNack > DELAYED_ACK_MS * 4) {
        this.#lastNack = now;
        this.#sendAck(true);
      }
    }
    // offset < expected: a retransmitted duplicate; our acks already covered it.
  }

  #onEof(offset: number): void {
    if (this.#ended) {
      this.#sendAck(false); // our final ack was lost: repeat it
      return;
    }
    if (offset !== this.#expected) {
      this.#sendAck(true);
      return;
    }
    this.#ended = true;
    this.push(null);
    this.#sendAck(false);
    clearInterval(this.#tickTimer);
    this.#lingerTimer = setTimeout(() => this.#close(), LINGER_MS);
    this.#lingerTimer.unref();
  }

  #tick(): void {
    if (this.destroyed || this.#ended) return;
    const now = Date.now();
    if (!this.#heardFromPeer) return; // #hello is in charge until then
    if (now - this.#lastHeard > PEER_TIMEOUT_MS) {
      this.destroy(new KernelError("EPEERLOST", `stream ${this.id}: writer silent for ${now - this.#lastHeard} ms`));
    } else if (now - this.#lastSent > KEEPALIVE_MS) {
      this.#send(PING_FRAME);
    }
  }
}
