import { Writable } from "node:stream";
import { KernelError } from "../errors.js";
import type { DirectLink, DirectOffer } from "./direct-link.js";
import { decodeFrame, encodeData, encodeDataHeader, encodeEof, encodeReset, PING_FRAME, type Frame } from "./frame.js";
import {
  CONNECT_TIMEOUT_MS,
  DIRECT_AFTER_BYTES,
  KEEPALIVE_MS,
  MAX_FRAME_BYTES,
  PEER_TIMEOUT_MS,
  RETRANSMIT_MS,
  WRITER_HIGH_WATER_BYTES,
} from "./limits.js";
import { streamControlSubject, streamDataSubject } from "../subjects.js";
import type { StreamTransport } from "./transport.js";

interface SentFrame {
  readonly offset: number;
  readonly payload: Buffer;
}

/**
 * The sending end of a stream, as a Node `Writable`: pipe a child's stdout into it and the child blocks
 * in write(2) when the reader's credit runs out, exactly as with a local pipe.
 *
 * It sends nothing until the reader's first credit arrives (the reader may subscribe after us), keeps
 * every sent-but-unconfirmed frame for retransmission (bounded by the reader's window), and fails
 * with EPIPE when the reader resets (its consumer went away) so the source can be closed.
 *
 * @example
 * const w = new StreamWriter(natsTransport(nc), id);
 * child.stdout.pipe(w);
 */
export class StreamWriter extends Writable {
  readonly id: string;
  #transport: StreamTransport;
  #subscription: { unsubscribe(): void };
  #dataSubject: string;
  /** Next offset to send. */
  #sent = 0;
  /** Every byte below this has reached the reader. */
  #acked = 0;
  /** We may send below this offset. 0 until the reader's first credit. */
  #limit = 0;
  #unacked: SentFrame[] = [];
  /** The chunk `_write` is sending and its callback, waiting for credit. */
  #pending: { chunk: Buffer; done: (error?: Error | null) => void } | undefined;
  #finishing: ((error?: Error | null) => void) | undefined;
  #eofSent = false;
  #heardFromPeer = false;
  /** The reader is known to be subscribed (it granted `credit` before we existed). */
  #readerSubscribed = false;
  #lastHeard = Date.now();
  #lastSent = Date.now();
  #lastProgress = Date.now();
  #timer: NodeJS.Timeout;
  /** The reader's offer of a direct link, and where we are with it. */
  #offer: DirectOffer | undefined;
  #link: DirectLink | undefined;
  #linkState: "none" | "connecting" | "switching" | "up" | "failed" = "none";
  /** The link's socket asked us to wait for 'drain'. */
  #linkBlocked = false;

  /**
   * `startOffset`: bytes before it reached the reader out of band (its `initial`); we send from there.
   * `credit`: what the reader granted before this writer existed — it subscribed first and told us its
   * id out of band (a netstack connect request) — so the first bytes go at once instead of a round trip
   * later, when its first word would arrive.
   */
  constructor(
    transport: StreamTransport,
    id: string,
    options: { highWaterMark?: number; startOffset?: number; credit?: number } = {},
  ) {
    super({ highWaterMark: options.highWaterMark ?? WRITER_HIGH_WATER_BYTES, decodeStrings: true });
    this.id = id;
    this.#sent = this.#acked = options.startOffset ?? 0;
    this.#limit = this.#sent + (options.credit ?? 0);
    this.#readerSubscribed = options.credit !== undefined;
    this.#transport = transport;
    this.#dataSubject = streamDataSubject(id);
    this.#subscription = transport.subscribe(streamControlSubject(id), (data) => this.#onMessage(data));
    this.#timer = setInterval(() => this.#tick(), Math.min(KEEPALIVE_MS, RETRANSMIT_MS) / 4);
    this.#timer.unref();
    // If the reader subscribed before us, its opening credit is gone: this ping makes it repeat it.
    // Given that credit, we need nothing from it (our first frame, or keepalive, tells it we exist).
    if (options.credit === undefined) this.#send(PING_FRAME);
  }

  /** Bytes handed to the transport so far. */
  get bytesSent(): number {
    return this.#sent;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#pending = { chunk, done };
    this.#pump();
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#finishing = done;
    // An empty stream ends at once, before the reader's first word (a spawned `true` need not wait a
    // round trip for credit it will never use). Should the reader not be subscribed yet, its first
    // word makes us send the EOF again.
    if (this.#heardFromPeer || this.#readerSubscribed || this.#sent === 0) this.#sendEof();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    clearInterval(this.#timer);
    this.#closeLink();
    if (!this.writableFinished && !(error instanceof KernelError && error.code === "EPIPE")) {
      // We stop before the end: tell the reader, so it fails instead of waiting for bytes.
      const code = error instanceof KernelError ? error.code : "ECONNRESET";
      this.#send(encodeReset(code, error?.message ?? "writer closed before the end of the stream"));
    }
    this.#subscription.unsubscribe();
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.done(error);
    done(error);
  }

  #send(frame: Uint8Array): void {
    this.#lastSent = Date.now();
    this.#transport.publish(this.#dataSubject, frame);
  }

  /** One data frame, over the direct link when it is up, else over NATS. */
  #sendData(offset: number, payload: Buffer): void {
    if (this.#linkState === "up" && this.#link !== undefined) {
      this.#lastSent = Date.now();
      if (!this.#link.send(encodeDataHeader(offset), payload)) {
        this.#linkBlocked = true;
        this.#link.onDrain(() => {
          this.#linkBlocked = false;
          this.#pump();
        });
      }
      return;
    }
    if (this.#transport.publishParts !== undefined) {
      this.#lastSent = Date.now();
      this.#transport.publishParts(this.#dataSubject, encodeDataHeader(offset), payload);
      return;
    }
    this.#send(encodeData(offset, payload));
  }

  #maybeGoDirect(): void {
    const connect = this.#transport.connectDirect;
    if (this.#linkState !== "none" || this.#offer === undefined || connect === undefined) return;
    if (this.#sent < DIRECT_AFTER_BYTES) return;
    this.#linkState = "connecting";
    connect(this.#offer, this.id).then(
      (link) => {
        if (this.destroyed || this.writableFinished) return link.close();
        this.#link = link;
        this.#linkState = "switching";
        link.onClose(() => this.#linkLost());
        this.#pump();
      },
      () => {
        this.#linkState = "failed"; // unreachable from here: NATS carries on
      },
    );
  }

  /** The link broke: everything not yet acknowledged goes again, over NATS. */
  #linkLost(): void {
    if (this.#linkState !== "up" && this.#linkState !== "switching") return;
    this.#linkState = "failed";
    this.#link = undefined;
    this.#linkBlocked = false;
    if (!this.destroyed && !this.writableFinished) {
      this.#retransmit();
      this.#pump();
    }
  }

  #closeLink(): void {
    const link = this.#link;
    this.#link = undefined;
    if (this.#linkState === "up" || this.#linkState === "switching") this.#linkState = "failed";
    link?.close();
  }

  #pump(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#maybeGoDirect();
    if (this.#linkState === "switching") {
      // Frames must not overtake each other across the two paths: switch once NATS has delivered all.
      if (this.#acked < this.#sent) return;
      this.#linkState = "up";
    }
    let { chunk } = pending;
    while (chunk.length > 0 && this.#sent < this.#limit && !this.#linkBlocked) {
      const n = Math.min(chunk.length, this.#limit - this.#sent, MAX_FRAME_BYTES);
      const payload = chunk.subarray(0, n);
      this.#unacked.push({ offset: this.#sent, payload });
      this.#sendData(this.#sent, payload);
      this.#sent += n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length === 0) {
      this.#pending = undefined;
      pending.done();
    } else {
      pending.chunk = chunk;
    }
  }

  #sendEof(): void {
    this.#eofSent = true;
    const frame = encodeEof(this.#sent);
    if (this.#linkState === "up" && this.#link !== undefined) {
      this.#link.send(frame);
    } else {
      this.#send(frame);
    }
  }

  #onMessage(data: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(data);
    } catch {
      return; // a malformed frame is dropped: it cannot be ours, and the protocol recovers by retransmission
    }
    this.#lastHeard = Date.now();
    if (!this.#heardFromPeer) {
      this.#heardFromPeer = true;
      if (this.#finishing !== undefined) this.#sendEof();
    }
    switch (frame.type) {
      case "ack":
        this.#onAck(frame);
        return;
      case "reset":
        this.destroy(new KernelError("EPIPE", `stream reader closed: ${frame.message}`));
        return;
      case "ping":
        return;
      case "offer":
        if (this.#offer === undefined) this.#offer = { host: frame.host, port: frame.port, token: frame.token };
        return;
      case "data":
      case "eof":
        return; // not sent to a writer
    }
  }

  #onAck(ack: Extract<Frame, { type: "ack" }>): void {
    if (ack.received > this.#sent) return; // claims bytes we never sent: not for this stream
    if (ack.received > this.#acked) {
      this.#acked = ack.received;
      this.#lastProgress = Date.now();
      let drop = 0;
      while (drop < this.#unacked.length) {
        const f = this.#unacked[drop]!;
        if (f.offset + f.payload.length > this.#acked) break;
        drop++;
      }
      if (drop > 0) this.#unacked.splice(0, drop);
    }
    this.#limit = Math.max(this.#limit, ack.consumed + ack.window);
    if (ack.resend) this.#retransmit();
    if (this.#eofSent && ack.eof && ack.received === this.#sent) {
      const finish = this.#finishing;
      this.#finishing = undefined;
      clearInterval(this.#timer);
      this.#subscription.unsubscribe();
      this.#closeLink();
      finish?.();
      return;
    }
    this.#pump();
  }

  #retransmit(): void {
    this.#lastProgress = Date.now();
    if (this.#linkState === "switching") return; // the switch waits for these acks; NATS will deliver
    for (const f of this.#unacked) {
      if (f.offset + f.payload.length > this.#acked) this.#sendData(f.offset, f.payload);
    }
    if (this.#eofSent) this.#sendEof();
  }

  #tick(): void {
    if (this.destroyed || this.writableFinished) return;
    const now = Date.now();
    const silence = now - this.#lastHeard;
    if (silence > (this.#heardFromPeer ? PEER_TIMEOUT_MS : CONNECT_TIMEOUT_MS)) {
      this.destroy(new KernelError("EPEERLOST", `stream ${this.id}: reader silent for ${silence} ms`));
      return;
    }
    const waiting = this.#unacked.length > 0 || this.#eofSent;
    if (waiting && this.#transport.reliable !== true && now - this.#lastProgress > RETRANSMIT_MS) {
      this.#retransmit();
    } else if (now - this.#lastSent > KEEPALIVE_MS) {
      this.#send(PING_FRAME);
    }
  }
}
