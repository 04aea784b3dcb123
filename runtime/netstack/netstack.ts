import { closeSync, fstatSync, openSync } from "node:fs";
import type { Socket } from "node:net";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  decode,
  encode,
  followBucket,
  KernelError,
  replyTo,
  newStreamId,
  toWireError,
  PeerLink,
  StreamReader,
  StreamWriter,
  WINDOW_BYTES,
  type ConnectReader,
  type DirectServer,
  type StreamTransport,
} from "../../pseudokernel/index.js";
import { addon } from "../native-addon.js";
import { socketReader } from "../os-pipe.js";
import { ConnectionBridge, SocketInflow } from "./connection-bridge.js";
import { openPortRegistry } from "./port-registry.js";
import { commandLine, listeningSockets, socketOwners } from "./socket-table.js";
import {
  LINK_CONNECT_SUBJECT,
  MAX_EARLY_BYTES,
  netstackConnectSubject,
  parseConnectReply,
  parseConnectRequest,
  parseLinkReply,
  parseNetstackRequest,
  parsePortRecord,
  type ConnectReply,
  type ConnectRequest,
  type LinkReply,
  type LinkRequest,
  type PortRecord,
} from "./wire.js";

/** How often the node's socket tables are read: a stopped server is released everywhere well within 1 s. */
const SCAN_MS = 250;
/**
 * A caller waits this long for the owner's answer. Data does not wait for it (the streams open first), so
 * it only bounds how long a silent owner holds a connection: a burst of 1,000 connects takes the owner
 * over 2 s to answer on a loaded machine. An owner already known to be down is refused at once.
 */
const CONNECT_REQUEST_TIMEOUT_MS = 5000;
/** The owner waits this long to connect to the real server (less than the caller waits). */
const LOCAL_CONNECT_TIMEOUT_MS = 4000;
/** Pending connections a proxy port queues, as a busy server's own listen backlog would. */
const PROXY_BACKLOG = 4096;
/**
 * How long a caller waits for the client's first bytes before asking the owner. Most protocols speak
 * first (HTTP, Redis, PostgreSQL), and bytes that ride in the connect request reach the server two
 * NATS hops sooner than through a stream that must first hear from its reader. A server that speaks
 * first (SSH, SMTP) pays this once per connection.
 */
const EARLY_DATA_WAIT_MS = 1;
/** How long a caller waits for a peer link to be made before its connections go over NATS. */
const LINK_TIMEOUT_MS = 2000;
/** After a peer link could not be made, connections to that node go over NATS this long before we try again. */
const LINK_RETRY_MS = 5000;

export interface NetstackOptions {
  readonly nc: NatsConnection;
  readonly node: string;
  readonly transport: StreamTransport;
  /** `/proc/PID/ns/net` of the node's network namespace, and PID (a process that lives in it). */
  readonly netNamespace: string;
  readonly namespacePid: number;
  readonly replicas?: number;
  readonly logger: Logger;
  /** Whether a node is alive (a connection to a dead owner is refused at once). */
  readonly isNodeAlive: (node: string) => boolean;
  /** Whether a node is known and has gone silent (its ports are let go before the registry says so). */
  readonly isNodeLost: (node: string) => boolean;
  /** The oneos pid of a host pid this runtime supervises. */
  readonly oneosPid: (hostPid: number) => number | undefined;
  /**
   * False: no peer links, every connection goes over NATS (runtimes that cannot reach each other's
   * data ports; with links on they would find out by a 2 s timeout per node). Default true.
   */
  readonly peerLinks?: boolean;
}

/**
 * One node's netstack: notices its processes' listening TCP ports (by reading the namespace's socket
 * tables), publishes them in the cluster port registry, holds every other node's ports in its own
 * namespace and carries each connection to the owner as a stream pair. Its sockets are made in the
 * node's namespace by the native addon (`runtime/native/net-ns.c`) and served here like any other.
 */
export class Netstack {
  #o: NetstackOptions;
  #kv: KV;
  /** The node's network namespace, held open for the native addon. */
  #netns: number;
  #subscription: Subscription | undefined;
  #watcher: { stop(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning = false;
  #closing = false;
  /** The registry as last seen. */
  #registry = new Map<number, PortRecord>();
  /** Ports of other nodes we hold, each with what stops accepting on it (and closes it). */
  #proxied = new Map<number, () => void>();
  /** Ports this node's processes listen on, with the addresses, as published. */
  #mine = new Map<number, string>();
  /** Listening inodes already classified: our proxies, or a server's host pid. */
  #inodes = new Map<number, number | "proxy">();
  #bridges = new Set<ConnectionBridge>();
  /**
   * Our peer links to the nodes whose ports we hold (undefined: none could be made; NATS carries).
   * A connection's request and both its streams go over the owner's link: one TCP hop each way.
   */
  #links = new Map<string, Promise<PeerLink | undefined>>();
  /** Links other nodes made to us, to answer their connects. */
  #answered = new Set<PeerLink>();

  private constructor(options: NetstackOptions, kv: KV, netns: number) {
    this.#o = options;
    this.#kv = kv;
    this.#netns = netns;
  }

  static async start(options: NetstackOptions): Promise<Netstack> {
    const kv = await openPortRegistry(options.nc, options.replicas !== undefined ? { replicas: options.replicas } : {});
    const netstack = new Netstack(options, kv, openSync(options.netNamespace, "r"));
    netstack.#subscription = options.nc.subscribe(netstackConnectSubject(options.node), {
      callback: (err, msg) => {
        if (err === null) void netstack.#onRequest(msg);
      },
    });
    netstack.#watcher = followBucket(kv, (entry) => netstack.#onRegistryEntry(entry));
    netstack.#timer = setInterval(() => void netstack.#scan(), SCAN_MS);
    return netstack;
  }

  /** The registry as this node sees it. */
  get ports(): PortRecord[] {
    return [...this.#registry.values()];
  }

  /** Removes the registry entries of a node that vanished (called by the leader). */
  async forgetNode(node: string): Promise<void> {
    await Promise.all([...this.#registry.values()].filter((r) => r.node === node).map((r) => this.#kv.delete(String(r.port))));
  }

  #onRegistryEntry(entry: KvWatchEntry): void {
    const port = Number(entry.key);
    if (entry.operation !== "PUT") {
      const owner = this.#registry.get(port)?.node;
      this.#registry.delete(port);
      this.#release(port);
      // No port of that node left to carry (it may be lost, and the leader deleted its ports before
      // our scan saw it so): the link goes too, and a new one is made with its next port.
      if (owner !== undefined && ![...this.#registry.values()].some((r) => r.node === owner)) this.#unlink(owner);
      // The leader deletes a lost node's ports; if we were only thought lost (a stall of a few
      // seconds) our servers still listen: forget the put, so the next scan registers them again.
      this.#mine.delete(port);
      return;
    }
    let record: PortRecord;
    try {
      record = parsePortRecord(decode(entry.value));
    } catch {
      return; // not a valid record: ignored, as `ps` ignores bad process records
    }
    this.#registry.set(port, record);
    this.#holdProxy(record);
  }

  /**
   * Holds a port of another node in our namespace while that node lives. A lost owner's ports are let
   * go at once — new connections are refused — without waiting for the leader's registry deletion,
   * which a JetStream election after the loss can hold up for seconds. An owner that comes back gets
   * its ports held again.
   */
  #holdProxy(record: PortRecord): void {
    if (this.#closing) return;
    if (record.node === this.#o.node || this.#o.isNodeLost(record.node)) {
      this.#release(record.port);
      if (record.node !== this.#o.node) this.#unlink(record.node);
    } else if (!this.#proxied.has(record.port)) {
      void this.#linkTo(record.node); // made now, so the first connection does not wait for it
      let stop: () => void;
      try {
        const fd = addon.listenIn(this.#netns, record.port, PROXY_BACKLOG);
        // Ours, not a server of this node, when the scan finds it (no process in the namespace holds it).
        this.#inodes.set(fstatSync(fd).ino, "proxy");
        stop = addon.acceptOn(fd, (connection, firstBytes) => {
          if (connection < 0) return this.#o.logger.warn({ port: record.port, errno: -connection }, "netstack: cannot accept on a proxy port");
          // Read into our own buffer (see socketReader); a FIN is carried as the stream's EOF, not answered with ours.
          const inflow = new SocketInflow();
          if (firstBytes !== null) inflow.onChunk(firstBytes); // read with the accept
          void this.#carryToOwner(record.port, socketReader(connection, inflow.onChunk), inflow);
        });
      } catch (error) {
        // Tried again at the next scan.
        this.#o.logger.warn({ port: record.port, code: (error as NodeJS.ErrnoException).code }, "netstack: cannot hold a remote port here");
        return;
      }
      this.#proxied.set(record.port, stop);
    }
  }

  /** Stops holding a port; connections already carried go on. */
  #release(port: number): void {
    const stop = this.#proxied.get(port);
    if (stop === undefined) return;
    this.#proxied.delete(port);
    stop();
  }

  /** Reads the namespace's socket tables and brings the registry in line with what listens here. */
  async #scan(): Promise<void> {
    if (this.#scanning || this.#closing) return;
    this.#scanning = true;
    try {
      for (const record of this.#registry.values()) this.#holdProxy(record);
      const sockets = await listeningSockets(this.#o.namespacePid);
      const unknown = new Set(sockets.filter((s) => !this.#inodes.has(s.inode)).map((s) => s.inode));
      if (unknown.size > 0) {
        const owners = await socketOwners(this.#o.namespacePid, unknown);
        for (const inode of unknown) {
          const pid = owners.get(inode);
          if (pid !== undefined) this.#inodes.set(inode, pid === process.pid ? "proxy" : pid);
        }
      }
      const seen = new Set(sockets.map((s) => s.inode));
      for (const inode of this.#inodes.keys()) if (!seen.has(inode)) this.#inodes.delete(inode);
      const now = new Map<number, { addresses: string[]; hostPid: number | null }>();
      for (const s of sockets) {
        const owner = this.#inodes.get(s.inode);
        if (owner === "proxy" || (owner === undefined && this.#proxied.has(s.port))) continue;
        const entry = now.get(s.port) ?? { addresses: [], hostPid: null };
        if (!entry.addresses.includes(s.address)) entry.addresses.push(s.address);
        if (typeof owner === "number") entry.hostPid ??= owner;
        now.set(s.port, entry);
      }
      for (const [port, entry] of now) {
        const key = `${entry.addresses.sort().join(",")}/${entry.hostPid}`;
        if (this.#mine.get(port) === key) continue;
        await this.#publish(port, entry.addresses, entry.hostPid, key);
      }
      for (const port of this.#mine.keys()) {
        if (now.has(port)) continue;
        this.#mine.delete(port);
        await this.#kv.delete(String(port)).catch(() => undefined);
      }
      // Entries of ours from an earlier life of this runtime that no longer listen.
      for (const r of this.#registry.values()) {
        if (r.node === this.#o.node && !now.has(r.port)) await this.#kv.delete(String(r.port)).catch(() => undefined);
      }
    } catch (error) {
      this.#o.logger.warn({ err: String(error) }, "netstack scan failed");
    } finally {
      this.#scanning = false;
    }
  }

  async #publish(port: number, addresses: string[], hostPid: number | null, key: string): Promise<void> {
    const record: PortRecord = {
      port,
      node: this.#o.node,
      pid: hostPid === null ? null : (this.#o.oneosPid(hostPid) ?? null),
      hostPid,
      command: hostPid === null ? "" : await commandLine(hostPid),
      addresses,
      since: Date.now(),
    };
    const existing = this.#registry.get(port);
    if (existing !== undefined && existing.node !== this.#o.node && this.#o.isNodeAlive(existing.node)) {
      // Both bound before either's proxy existed: the first registered keeps the port.
      this.#o.logger.warn({ port, owner: existing.node }, "port already registered by another node");
      this.#mine.set(port, key);
      return;
    }
    // Before the put: a caller may ask to connect as soon as the record is out.
    this.#mine.set(port, key);
    await this.#kv.put(String(port), encode(record)).catch((error: unknown) => {
      this.#mine.delete(port); // tried again at the next scan
      throw error;
    });
  }

  /** A connection accepted on a proxy port: open it on the owner, then join the streams. */
  async #carryToOwner(port: number, socket: Socket, inflow: SocketInflow): Promise<void> {
    // Until the bridge has it, a reset by the client must not be an unhandled 'error'.
    socket.on("error", () => undefined);
    const owner = this.#registry.get(port);
    if (owner === undefined || owner.node === this.#o.node || !this.#o.isNodeAlive(owner.node)) return void socket.resetAndDestroy();
    const toOwner = newStreamId();
    const toCaller = newStreamId();
    const link = await this.#linkTo(owner.node);
    const transport = link ?? this.#o.transport;
    // Our reader first, so its subscription is known (on the link, or cluster-wide) by the time the
    // owner writes: the owner may then send the server's first bytes at once, within the reader's
    // window (its writer's `credit`, so our reader's opening ack is not needed: `granted`).
    const input = new StreamReader(transport, toCaller, { windowBytes: WINDOW_BYTES, granted: true });
    const data = await inflow.first(EARLY_DATA_WAIT_MS, MAX_EARLY_BYTES);
    // The client gave up (a reset) while we waited: nothing to carry.
    if (socket.destroyed) return void input.destroy();
    const request = encode({ type: "connect", port, toOwner, toCaller, ...(data.length > 0 ? { data } : {}) });
    const answer =
      link !== undefined
        ? link.request(LINK_CONNECT_SUBJECT, request, CONNECT_REQUEST_TIMEOUT_MS)
        : this.#o.nc.request(netstackConnectSubject(owner.node), request, { timeout: CONNECT_REQUEST_TIMEOUT_MS }).then((m) => m.data);
    // The streams right after the request has gone, not after the reply: bytes flow as soon as the
    // owner's reader grants credit (which cannot be back before this tick ends), and set-up costs one
    // round trip less. A refusal or a silent owner aborts them.
    // Over a link, frames arrive in order: the owner makes its reader on our request, before our data
    // reaches it, so we have its opening credit by protocol too (less the bytes the request carried):
    // that reader's window is the default, WINDOW_BYTES (see #open).
    const credit = link !== undefined ? { credit: WINDOW_BYTES - data.length } : {};
    const bridge = this.#join(socket, inflow, new StreamWriter(transport, toOwner, { startOffset: data.length, ...credit }), input, link);
    let reply: ConnectReply;
    try {
      reply = parseConnectReply(decode(await answer));
    } catch (error) {
      this.#o.logger.debug({ port, err: String(error) }, "netstack: owner did not answer");
      return bridge.abort();
    }
    if (reply.type !== "connected") {
      this.#o.logger.debug({ port, code: reply.code, message: reply.message }, "netstack: owner refused");
      bridge.abort();
    }
  }

  /** A request on our NATS subject: a connection to open, or a peer link to make. */
  async #onRequest(msg: Msg): Promise<void> {
    let reply: ConnectReply | LinkReply;
    try {
      const request = parseNetstackRequest(decode(msg.data));
      reply = request.type === "link" ? await this.#answerLink(request) : await this.#open(request, this.#o.transport);
    } catch (error) {
      reply = refusal(error);
    }
    replyTo(msg, reply); // a caller that gave up: its streams time out, and ours with them
  }

  /** The owner's side: connect to the real server on our loopback, then answer. */
  async #open(request: ConnectRequest, transport: StreamTransport, link?: PeerLink): Promise<ConnectReply> {
    let streams: { out: StreamWriter; input: StreamReader } | undefined;
    try {
      // Only ports this node's servers listen on: the request cannot open anything else here.
      if (!this.#mine.has(request.port)) throw new KernelError("EINVAL", `port ${request.port} is not listening on ${this.#o.node}`);
      // Before the local connect: the caller's first bytes and its credit are on their way meanwhile.
      streams = {
        out: new StreamWriter(transport, request.toCaller, { credit: WINDOW_BYTES }),
        input: new StreamReader(transport, request.toOwner, {
          ...(request.data !== undefined ? { initial: request.data } : {}),
          // Over a link the caller's writer starts with our opening credit (see #carryToOwner).
          ...(link !== undefined ? { granted: true } : {}),
        }),
      };
      // Until the bridge owns them, a reset from the caller must not be an unhandled 'error'.
      streams.out.on("error", () => undefined);
      streams.input.on("error", () => undefined);
      const addresses = this.#registry.get(request.port)?.addresses ?? [];
      const v4 = addresses.length === 0 || addresses.some((a) => !a.includes(":") || a === "::");
      const fd = await new Promise<number>((resolve, reject) => {
        const failed = (code: string): void =>
          reject(new KernelError(code === "ETIMEDOUT" ? "ETIMEDOUT" : "EIO", `connect to port ${request.port}: ${code}`));
        try {
          const connected = addon.connectIn(this.#netns, v4 ? "127.0.0.1" : "::1", request.port, LOCAL_CONNECT_TIMEOUT_MS, (code, fd) =>
            code === null ? resolve(fd) : failed(code),
          );
          if (connected !== undefined) resolve(connected);
        } catch (error) {
          failed((error as NodeJS.ErrnoException).code ?? "EIO");
        }
      });
      const inflow = new SocketInflow();
      this.#join(socketReader(fd, inflow.onChunk), inflow, streams.out, streams.input, link);
      return { type: "connected" };
    } catch (error) {
      streams?.out.destroy(new KernelError("ECONNRESET", "connection refused"));
      streams?.input.destroy();
      return refusal(error);
    }
  }

  /** The owner's side of a peer link a caller's runtime asks for: its connects then come over it. */
  async #answerLink(request: LinkRequest): Promise<LinkReply> {
    const parts = this.#linkParts();
    if (parts === undefined || this.#closing) throw new KernelError("EINVAL", "no peer links here");
    const { link, id, offer } = await PeerLink.answer(parts.directServer, parts.connectReader, request.id, { host: request.host, port: request.port, token: Buffer.from(request.token) });
    link.handle(LINK_CONNECT_SUBJECT, async (bytes) => encode(await this.#open(parseConnectRequest(decode(bytes)), link, link)));
    this.#answered.add(link);
    link.onClose(() => this.#answered.delete(link));
    return { type: "linked", id, host: offer.host, port: offer.port, token: offer.token };
  }

  /** What making a peer link takes, or undefined where there are none (no direct server, or links off). */
  #linkParts(): { directServer: DirectServer; connectReader: ConnectReader } | undefined {
    const { directServer, connectReader } = this.#o.transport;
    if (directServer === undefined || connectReader === undefined || this.#o.peerLinks === false) return undefined;
    return { directServer, connectReader };
  }

  /** Our link to `node`, made once (undefined while one cannot be made: NATS carries then). */
  #linkTo(node: string): Promise<PeerLink | undefined> {
    const known = this.#links.get(node);
    if (known !== undefined) return known;
    const made = this.#dial(node);
    this.#links.set(node, made);
    void made.then((link) => {
      const forget = (): void => {
        if (this.#links.get(node) === made) this.#links.delete(node);
      };
      if (link === undefined) setTimeout(forget, LINK_RETRY_MS).unref();
      else link.onClose(forget);
    });
    return made;
  }

  async #dial(node: string): Promise<PeerLink | undefined> {
    const parts = this.#linkParts();
    if (parts === undefined) return undefined;
    const asking = PeerLink.ask(parts.directServer);
    try {
      const request = { type: "link", id: asking.id, host: asking.offer.host, port: asking.offer.port, token: asking.offer.token };
      const msg = await this.#o.nc.request(netstackConnectSubject(node), encode(request), { timeout: LINK_TIMEOUT_MS });
      const reply = parseLinkReply(decode(msg.data));
      const link = await asking.complete(parts.connectReader, reply.id, { host: reply.host, port: reply.port, token: Buffer.from(reply.token) });
      if (this.#closing) link.close();
      return link;
    } catch (error) {
      asking.cancel();
      this.#o.logger.debug({ node, err: String(error) }, "netstack: no peer link; connections go over NATS");
      return undefined;
    }
  }

  /** Closes our link to a node (it was lost): its connections fail now, not at a stream timeout. */
  #unlink(node: string): void {
    const link = this.#links.get(node);
    this.#links.delete(node);
    void link?.then((l) => l?.close());
  }

  /** Joins a socket to its streams; over a link, the connection is reset when the link closes. */
  #join(socket: Socket, inflow: SocketInflow, out: StreamWriter, input: StreamReader, link: PeerLink | undefined): ConnectionBridge {
    const bridge = new ConnectionBridge(socket, inflow, out, input);
    this.#bridges.add(bridge);
    const forget = link?.onClose(() => bridge.abort());
    void bridge.closed.then(() => {
      this.#bridges.delete(bridge);
      forget?.();
    });
    return bridge;
  }

  /** Open connections carried by this node (for leak checks). */
  get connections(): number {
    return this.#bridges.size;
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    this.#watcher?.stop();
    this.#subscription?.unsubscribe();
    for (const b of this.#bridges) b.reset();
    for (const port of [...this.#proxied.keys()]) this.#release(port);
    for (const node of [...this.#links.keys()]) this.#unlink(node);
    for (const link of this.#answered) link.close();
    closeSync(this.#netns);
    await Promise.all([...this.#mine.keys()].map((p) => this.#kv.delete(String(p)).catch(() => undefined)));
  }
}

/** A refusal carries the error as the wire carries errors (code kept, message bounded). */
function refusal(error: unknown): ConnectReply {
  const { code, message } = toWireError(error);
  return { type: "refused", code, message };
}
