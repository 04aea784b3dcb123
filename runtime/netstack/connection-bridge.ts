import type { Socket } from "node:net";
import { KernelError, StreamReader, StreamWriter } from "../../pseudokernel/index.js";

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

  constructor(socket: Socket, out: StreamWriter, input: StreamReader) {
    this.#socket = socket;
    this.#out = out;
    this.#in = input;
    const gone = (s: { readonly closed: boolean; once(e: "close", f: () => void): unknown }): Promise<void> =>
      s.closed ? Promise.resolve() : new Promise((r) => s.once("close", () => r()));
    this.closed = Promise.all([gone(socket), gone(out), gone(input)]).then(() => undefined);
    socket.pipe(out);
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
    this.#socket.unpipe(this.#out);
    this.#out.destroy(new KernelError("ECONNRESET", "connection reset by peer"));
    this.#in.destroy();
    this.#socket.destroy();
  }

  /** A stream failed, or the owner refused: the local peer gets a RST, then everything closes. */
  abort(): void {
    if (this.#reset) return;
    this.#reset = true;
    this.#socket.unpipe(this.#out);
    this.#in.unpipe(this.#socket);
    this.#socket.resetAndDestroy();
    if (!this.#out.destroyed) this.#out.destroy(new KernelError("ECONNRESET", "connection reset"));
    if (!this.#in.destroyed) this.#in.destroy();
  }
}
