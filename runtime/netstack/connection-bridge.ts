import type { Socket } from "node:net";
import { KernelError, StreamReader, StreamWriter } from "../../pseudokernel/index.js";

/**
 * Where a socket's reads go (its `onread`, see `socketReader`): held until a stream takes them, then
 * written into it, the socket paused while the stream is full. Chunks are up to 1 MiB, so a fast
 * connection costs a few frames per MiB, not one per 64 KiB read.
 */
export class SocketInflow {
  #held: Buffer[] = [];
  #target: StreamWriter | undefined;
  #socket: Socket | undefined;
  #dropped = false;
  #arrived: (() => void) | undefined;

  /** The socket's `onChunk`: false pauses it. */
  readonly onChunk = (chunk: Buffer): boolean => {
    if (this.#dropped) return true;
    if (this.#target === undefined) {
      this.#held.push(chunk);
      this.#arrived?.();
      return false; // nothing reads on until a stream takes over
    }
    return this.#write(chunk);
  };

  /**
   * The first bytes, if any come within `waitMs` (at most `max`; the rest is kept for the stream);
   * empty otherwise.
   */
  first(waitMs: number, max: number): Promise<Buffer> {
    return new Promise((resolve) => {
      const take = (): void => {
        clearTimeout(timer);
        this.#arrived = undefined;
        const chunk = this.#held.shift();
        if (chunk === undefined) return resolve(Buffer.alloc(0));
        if (chunk.length > max) this.#held.unshift(chunk.subarray(max));
        resolve(chunk.subarray(0, max));
      };
      const timer = setTimeout(take, waitMs);
      if (this.#held.length > 0) take();
      else this.#arrived = take;
    });
  }

  /** From now on, the socket's bytes go into `target`; its end is the stream's end. */
  attach(socket: Socket, target: StreamWriter): void {
    this.#socket = socket;
    this.#target = target;
    const held = this.#held;
    this.#held = [];
    let flowing = true;
    for (const chunk of held) flowing = this.#write(chunk);
    // A client that closed before sending anything has had its end read already.
    if (socket.readableEnded) target.end();
    else
      socket.once("end", () => {
        if (!this.#dropped) target.end();
      });
    // A held chunk paused the socket (and `first` may have taken it since): read on.
    if (flowing) socket.resume();
  }

  /** Stops carrying (the connection is being reset): what comes later is dropped. */
  drop(): void {
    this.#dropped = true;
    this.#held = [];
  }

  #write(chunk: Buffer): boolean {
    if (this.#target!.write(chunk)) return true;
    this.#target!.once("drain", () => {
      if (!this.#dropped) this.#socket?.resume();
    });
    return false;
  }
}

/**
 * One TCP connection's runtime half: the local peer's socket (in the node's network namespace) joined
 * to a stream pair to the other node. FIN is carried as the stream's EOF
 * (half-close), RST as a stream reset, both ways:
 *
 * - the socket ends (the local peer shut down writing) → `out.end()`; `in` ends → socket `end()`;
 * - the local peer resets (ECONNRESET) → both streams are reset, so the other side resets its socket;
 * - a stream fails (reset by the other side, or its peer lost) → the socket is reset (RST).
 *
 * Returns a promise that settles when everything is closed (no leak).
 */
export class ConnectionBridge {
  readonly closed: Promise<void>;
  #socket: Socket;
  #out: StreamWriter;
  #in: StreamReader;
  #reset = false;

  #inflow: SocketInflow;

  /** `socket` is read through `inflow` (made with `socketReader(fd, inflow.onChunk)`). */
  constructor(socket: Socket, inflow: SocketInflow, out: StreamWriter, input: StreamReader) {
    this.#socket = socket;
    this.#inflow = inflow;
    this.#out = out;
    this.#in = input;
    const gone = (s: { readonly closed: boolean; once(e: "close", f: () => void): unknown }): Promise<void> =>
      s.closed ? Promise.resolve() : new Promise((r) => s.once("close", () => r()));
    this.closed = Promise.all([gone(socket), gone(out), gone(input)]).then(() => undefined);
    inflow.attach(socket, out);
    input.pipe(socket);
    out.on("error", () => this.abort());
    input.on("error", () => this.abort());
    // The owner opens its streams before its local connect: one may have failed already (and the
    // socket too: its 'close' has then been emitted and will not come again).
    if (out.destroyed || input.destroyed || socket.destroyed) queueMicrotask(() => this.abort());
    socket.on("error", () => this.reset());
    // Closed without a reset and before the end: the other side must not wait for more.
    socket.once("close", () => {
      if (!out.writableFinished && !socket.readableEnded) this.reset();
      else if (!input.readableEnded) input.destroy();
    });
  }

  /** The local peer reset its socket: reset both streams. */
  reset(): void {
    if (this.#reset) return;
    this.#reset = true;
    this.#inflow.drop();
    this.#out.destroy(new KernelError("ECONNRESET", "connection reset by peer"));
    this.#in.destroy();
    this.#socket.destroy();
  }

  /** A stream failed, or the owner refused: the local peer gets a RST, then everything closes. */
  abort(): void {
    if (this.#reset) return;
    this.#reset = true;
    this.#inflow.drop();
    this.#in.unpipe(this.#socket);
    this.#socket.resetAndDestroy();
    if (!this.#out.destroyed) this.#out.destroy(new KernelError("ECONNRESET", "connection reset"));
    if (!this.#in.destroyed) this.#in.destroy();
  }
}
