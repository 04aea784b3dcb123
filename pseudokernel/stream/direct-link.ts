import { randomBytes, timingSafeEqual } from "node:crypto";
import { connect as tcpConnect, createServer, type NetConnectOpts, type Server, type Socket } from "node:net";
import { KernelError } from "../errors.js";

/**
 * The direct data path of streams: a TCP connection from a writer's process to the reader's process
 * that carries the same DATA/EOF frames as NATS, length-prefixed. NATS routes between servers cap a
 * stream at ≈ 200–300 MB/s on a small machine; a direct connection does not add two server hops.
 * Credit, acks and resets stay on NATS, so the stream's bounds and semantics do not change, and a
 * link that breaks only means the writer goes back to NATS from the last acknowledged byte.
 */

/** What a reader's process tells the writer (over NATS) so it can connect. */
export interface DirectOffer {
  readonly host: string;
  readonly port: number;
  /** 128 random bits, one per stream: the connection must present it. */
  readonly token: Buffer;
}

const TOKEN_BYTES = 16;
/** The first bytes of a connection: id length, id, token. Ids are short (≤ 64). */
const MAX_PREAMBLE_BYTES = 1 + 64 + TOKEN_BYTES;
/** A frame larger than this on a link is a protocol violation (frames are ≤ 512 KiB + header). */
const MAX_LINK_FRAME_BYTES = 8 * 1024 * 1024;
/** A connection that does not finish its preamble in this long is dropped. */
const PREAMBLE_TIMEOUT_MS = 5000;

/** What a registration is told besides its frames. */
export interface RegistrationEvents {
  /** Its connection closed. */
  readonly onClose?: () => void;
  /** Its connection presented the token: the socket, to write to (a peer link sends on it). */
  readonly onSocket?: (socket: Socket) => void;
}

interface Registration extends RegistrationEvents {
  readonly token: Buffer;
  readonly onFrame: (frame: Uint8Array) => void;
  socket?: Socket;
}

/** Accepts direct links for the stream readers of one process. */
export class DirectServer {
  readonly host: string;
  readonly port: number;
  #server: Server;
  #readers = new Map<string, Registration>();
  #sockets = new Set<Socket>();

  private constructor(server: Server, host: string, port: number) {
    this.#server = server;
    this.host = host;
    this.port = port;
    server.on("connection", (socket) => this.#accept(socket));
  }

  /** Listens on `host` (port chosen by the kernel). */
  static async listen(host: string): Promise<DirectServer> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new KernelError("EIO", "direct server: no address");
    return new DirectServer(server, host, address.port);
  }

  /** Lets a writer connect for stream `id`; frames it sends go to `onFrame`. */
  register(id: string, onFrame: (frame: Uint8Array) => void, events: RegistrationEvents = {}): DirectOffer {
    const token = randomBytes(TOKEN_BYTES);
    this.#readers.set(id, { token, onFrame, ...events });
    return { host: this.host, port: this.port, token };
  }

  unregister(id: string): void {
    const registration = this.#readers.get(id);
    this.#readers.delete(id);
    registration?.socket?.destroy();
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setTimeout(PREAMBLE_TIMEOUT_MS, () => socket.destroy());
    let registration: Registration | undefined;
    let preamble: Buffer = Buffer.alloc(0);
    let frames: FrameReader | undefined;
    socket.on("data", (chunk: Buffer) => {
      if (registration === undefined) {
        preamble = preamble.length === 0 ? chunk : Buffer.concat([preamble, chunk]);
        const idLength = preamble[0];
        if (idLength === undefined) return;
        if (idLength === 0 || idLength > 64) return void socket.destroy();
        if (preamble.length < 1 + idLength + TOKEN_BYTES) {
          if (preamble.length > MAX_PREAMBLE_BYTES) socket.destroy();
          return;
        }
        const id = preamble.subarray(1, 1 + idLength).toString("latin1");
        const token = preamble.subarray(1 + idLength, 1 + idLength + TOKEN_BYTES);
        const found = this.#readers.get(id);
        if (found === undefined || found.socket !== undefined || !timingSafeEqual(found.token, token)) {
          return void socket.destroy();
        }
        registration = found;
        frames = new FrameReader(found.onFrame);
        found.socket = socket;
        socket.setTimeout(0);
        if (found.onClose !== undefined) socket.once("close", found.onClose);
        found.onSocket?.(socket);
        chunk = preamble.subarray(1 + idLength + TOKEN_BYTES);
      }
      if (!frames!.push(chunk)) socket.destroy();
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#readers.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The writer's end of a direct link. */
export interface DirectLink {
  /** Sends one frame made of `header` and `payload`; false when the socket wants a 'drain' first. */
  send(header: Uint8Array, payload?: Uint8Array): boolean;
  onDrain(callback: () => void): void;
  /** Called once when the link breaks or is closed. */
  onClose(callback: () => void): void;
  /** Ends it after what was sent. */
  close(): void;
  /** Drops it at once, and what it still had to send. */
  destroy(): void;
}

/** Sockets corked until the end of this tick (see `writeFrame`). */
const corked = new WeakSet<Socket>();

/**
 * Writes one length-prefixed frame made of `header` and `payload`; false when the socket wants a
 * 'drain' first. Frames written in the same tick leave in one writev: a connection's set-up writes
 * several (its request, a reader's credit, a writer's hello), and each write to a loopback socket
 * runs the peer's receive path and wakes it.
 */
export function writeFrame(socket: Socket, header: Uint8Array, payload?: Uint8Array): boolean {
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(header.byteLength + (payload?.byteLength ?? 0));
  if (!corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    process.nextTick(() => {
      corked.delete(socket);
      socket.uncork();
    });
  }
  socket.write(prefix);
  socket.write(header);
  const ok = payload === undefined ? true : socket.write(payload);
  return ok && !socket.writableNeedDrain;
}

/** Connects to a `DirectServer` and presents the registration's token. */
async function dial(offer: DirectOffer, id: string, options: Partial<NetConnectOpts> = {}): Promise<Socket> {
  const socket = tcpConnect({ host: offer.host, port: offer.port, noDelay: true, ...options } as NetConnectOpts);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => socket.destroy());
  const idBytes = Buffer.from(id, "latin1");
  socket.write(Buffer.concat([Buffer.from([idBytes.length]), idBytes, offer.token]));
  return socket;
}

/** Connects to a reader's process and presents the stream's token. */
export async function connectDirect(offer: DirectOffer, id: string): Promise<DirectLink> {
  const socket = await dial(offer, id);
  return {
    send: (header, payload) => writeFrame(socket, header, payload),
    onDrain(callback) {
      socket.once("drain", callback);
    },
    onClose(callback) {
      socket.once("close", callback);
    },
    close() {
      socket.end();
    },
    destroy() {
      socket.destroy();
    },
  };
}

/**
 * Connects to a `DirectServer` to *receive* frames on the connection (a peer link reads on the
 * connections it made and writes on those it accepted: Node lets only a socket it connects read into
 * buffers of our choosing). A malformed frame destroys the socket.
 */
export async function connectReader(offer: DirectOffer, id: string, onFrame: (frame: Buffer) => void): Promise<Socket> {
  const reader = new FrameReader(onFrame);
  const socket: Socket = await dial(offer, id, {
    onread: {
      buffer: () => reader.nextBuffer(),
      callback: (n: number) => {
        if (!reader.read(n)) socket.destroy();
        return true;
      },
    },
  });
  return socket;
}

/** Bytes of the buffer reads go into between frames (lengths, small frames, the start of big ones). */
const SCRATCH_BYTES = 32 * 1024;

/**
 * Cuts a connection's bytes into length-prefixed frames, each in a buffer of its own (never a view of a
 * read, which a stalled reader would keep alive whole). On a socket we connect, reads go where
 * `nextBuffer` says (Node's `onread` asks after every read): once a frame's length is known, into what
 * is left of that frame, so the bulk of a big frame is never copied and a read never spans frames. A
 * socket Node reads itself (one `DirectServer` accepted) hands its chunks to `push`, copied in the same way.
 */
class FrameReader {
  #scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** Bytes at the start of the scratch buffer kept from the last read (part of a length prefix). */
  #kept = 0;
  #frame: Buffer | undefined;
  #filled = 0;
  #broken = false;
  #onFrame: (frame: Buffer) => void;

  constructor(onFrame: (frame: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  nextBuffer(): Buffer {
    return this.#frame !== undefined ? this.#frame.subarray(this.#filled) : this.#scratch.subarray(this.#kept);
  }

  /** A chunk read elsewhere, taken as if it had been read into `nextBuffer`; false on a malformed length. */
  push(chunk: Buffer): boolean {
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(this.nextBuffer(), 0, at);
      at += n;
      if (!this.read(n)) return false;
    }
    return true;
  }

  /** `n` bytes arrived in the buffer `nextBuffer` gave; false on a malformed length (read no more). */
  read(n: number): boolean {
    if (this.#broken) return false;
    if (this.#frame !== undefined) {
      this.#filled += n;
      if (this.#filled === this.#frame.length) this.#emit();
      return true;
    }
    const bytes = this.#scratch.subarray(0, this.#kept + n);
    let at = 0;
    while (bytes.length - at >= 4) {
      const size = bytes.readUInt32BE(at);
      if (size === 0 || size > MAX_LINK_FRAME_BYTES) {
        this.#broken = true;
        return false;
      }
      const available = bytes.length - at - 4;
      if (available >= size) {
        this.#onFrame(Buffer.from(bytes.subarray(at + 4, at + 4 + size))); // the scratch is reused
        at += 4 + size;
        continue;
      }
      this.#frame = Buffer.allocUnsafe(size);
      this.#filled = bytes.copy(this.#frame, 0, at + 4);
      this.#kept = 0;
      return true;
    }
    this.#kept = bytes.copy(this.#scratch, 0, at);
    return true;
  }

  #emit(): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    this.#filled = 0;
    this.#onFrame(frame);
  }
}
