import type { Socket } from "node:net";
import { KernelError, StreamReader, StreamWriter } from "../../pseudokernel/index.js";

/** After asking the agent to reset, its data socket is closed by us if the agent has not within this. */
const RESET_LINGER_MS = 2000;

/**
 * One TCP connection's runtime half: the agent's data socket joined to a stream pair to the other
 * node. FIN is carried as the stream's EOF (half-close), RST as a stream reset, both ways:
 *
 * - data socket ends (the local peer shut down writing) → `out.end()`; `in` ends → data socket `end()`;
 * - the agent reports a reset → both streams are reset, so the other side resets its socket;
 * - a stream fails (reset by the other side, or its peer lost) → `resetAgent()` makes the agent send RST.
 *
 * Returns a promise that settles when everything is closed (no leak).
 */
export class ConnectionBridge {
  readonly closed: Promise<void>;
  #socket: Socket;
  #out: StreamWriter;
  #in: StreamReader;
  #resetAgent: () => void;
  #reset = false;

  constructor(socket: Socket, out: StreamWriter, input: StreamReader, resetAgent: () => void) {
    this.#socket = socket;
    this.#out = out;
    this.#in = input;
    this.#resetAgent = resetAgent;
    const gone = (s: { readonly closed: boolean; once(e: "close", f: () => void): unknown }): Promise<void> =>
      s.closed ? Promise.resolve() : new Promise((r) => s.once("close", () => r()));
    this.closed = Promise.all([gone(socket), gone(out), gone(input)]).then(() => undefined);
    socket.pipe(out);
    input.pipe(socket);
    out.on("error", () => this.abort());
    input.on("error", () => this.abort());
    // The owner opens its streams before its local connect: one may have failed already.
    if (out.destroyed || input.destroyed) queueMicrotask(() => this.abort());
    socket.on("error", () => this.reset());
    // Closed by the agent without a reset and before the end: the other side must not wait for more.
    socket.once("close", () => {
      if (!out.writableFinished && !socket.readableEnded) this.reset();
      else if (!input.readableEnded) input.destroy();
    });
  }

  /** The local peer reset its socket (the agent said so): reset both streams. */
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
    this.#resetAgent();
    if (!this.#out.destroyed) this.#out.destroy(new KernelError("ECONNRESET", "connection reset"));
    if (!this.#in.destroyed) this.#in.destroy();
    setTimeout(() => this.#socket.destroy(), RESET_LINGER_MS).unref();
  }
}
