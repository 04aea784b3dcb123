import { join } from "node:path";
import type { Socket } from "node:net";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decode, encode, followBucket, KernelError, replyTo, newStreamId, StreamReader, StreamWriter, type StreamTransport } from "../../pseudokernel/index.js";
import { AgentLink } from "./agent-link.js";
import { ConnectionBridge } from "./connection-bridge.js";
import { openPortRegistry } from "./port-registry.js";
import { commandLine, listeningSockets, socketOwners } from "./socket-table.js";
import {
  netstackConnectSubject,
  parseConnectReply,
  parseConnectRequest,
  parsePortRecord,
  type AgentEvent,
  type ConnectReply,
  type DataHeader,
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
/** The owner waits this long for its agent to connect to the real server (less than the caller waits). */
const LOCAL_CONNECT_TIMEOUT_MS = 4000;

export interface NetstackOptions {
  readonly nc: NatsConnection;
  readonly node: string;
  readonly transport: StreamTransport;
  /** `/proc/PID/ns/net` of the node's network namespace, and PID (a process that lives in it). */
  readonly netNamespace: string;
  readonly namespacePid: number;
  readonly stateDir: string;
  readonly replicas?: number;
  readonly logger: Logger;
  /** Whether a node is alive (a connection to a dead owner is refused at once). */
  readonly isNodeAlive: (node: string) => boolean;
  /** Whether a node is known and has gone silent (its ports are let go before the registry says so). */
  readonly isNodeLost: (node: string) => boolean;
  /** The oneos pid of a host pid this runtime supervises. */
  readonly oneosPid: (hostPid: number) => number | undefined;
}

interface PendingConnect {
  resolve(socket: Socket): void;
  reject(error: KernelError): void;
}

/**
 * One node's netstack: notices its processes' listening TCP ports (by reading the namespace's socket
 * tables), publishes them in the cluster port registry, holds every other node's ports in its own
 * namespace (through the agent) and carries each connection to the owner as a stream pair.
 */
export class Netstack {
  #o: NetstackOptions;
  #kv: KV;
  #agent!: AgentLink;
  #subscription: Subscription | undefined;
  #watcher: { stop(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning = false;
  #closing = false;
  /** The registry as last seen. */
  #registry = new Map<number, PortRecord>();
  /** Ports of other nodes that our agent holds. */
  #proxied = new Set<number>();
  /** Ports this node's processes listen on, with the addresses, as published. */
  #mine = new Map<number, string>();
  /** Listening inodes already classified: the agent's own, or a server's host pid. */
  #inodes = new Map<number, number | "agent">();
  #pending = new Map<string, PendingConnect>();
  #bridges = new Map<string, ConnectionBridge>();
  #nextConn = 0;

  private constructor(options: NetstackOptions, kv: KV) {
    this.#o = options;
    this.#kv = kv;
  }

  static async start(options: NetstackOptions): Promise<Netstack> {
    const kv = await openPortRegistry(options.nc, options.replicas !== undefined ? { replicas: options.replicas } : {});
    const netstack = new Netstack(options, kv);
    netstack.#agent = await AgentLink.start({
      netNamespace: options.netNamespace,
      socketPath: join(options.stateDir, "netstack.sock"),
      logger: options.logger,
      onEvent: (e) => netstack.#onAgentEvent(e),
      onData: (h, s) => netstack.#onData(h, s),
      onRestart: () => {
        netstack.#inodes.clear();
        for (const port of netstack.#proxied) netstack.#agent.send({ type: "listen", port });
      },
    });
    netstack.#subscription = options.nc.subscribe(netstackConnectSubject(options.node), {
      callback: (err, msg) => {
        if (err === null) void netstack.#onConnectRequest(msg);
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
      this.#registry.delete(port);
      this.#release(port);
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
    if (record.node === this.#o.node || this.#o.isNodeLost(record.node)) this.#release(record.port);
    else if (!this.#proxied.has(record.port)) {
      this.#proxied.add(record.port);
      this.#agent.send({ type: "listen", port: record.port });
    }
  }

  #release(port: number): void {
    if (!this.#proxied.delete(port)) return;
    this.#agent.send({ type: "unlisten", port });
    // The agent's socket for it may linger in the table a moment: classify it again next time.
    for (const [inode, owner] of this.#inodes) if (owner === "agent") this.#inodes.delete(inode);
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
          if (pid !== undefined) this.#inodes.set(inode, pid === this.#agent.pid ? "agent" : pid);
        }
      }
      const seen = new Set(sockets.map((s) => s.inode));
      for (const inode of this.#inodes.keys()) if (!seen.has(inode)) this.#inodes.delete(inode);
      const now = new Map<number, { addresses: string[]; hostPid: number | null }>();
      for (const s of sockets) {
        const owner = this.#inodes.get(s.inode);
        if (owner === "agent" || (owner === undefined && this.#proxied.has(s.port))) continue;
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

  #onAgentEvent(event: AgentEvent): void {
    switch (event.type) {
      case "listening":
        return;
      case "listen-failed":
        this.#o.logger.warn({ port: event.port, code: event.code }, "netstack: cannot hold a remote port here");
        this.#proxied.delete(event.port);
        return;
      case "connect-failed":
        this.#pending.get(event.conn)?.reject(new KernelError("EIO", event.code));
        this.#pending.delete(event.conn);
        return;
      case "reset":
        this.#bridges.get(event.conn)?.reset();
        return;
    }
  }

  #onData(header: DataHeader, socket: Socket): void {
    if (header.port === undefined) {
      const pending = this.#pending.get(header.conn);
      this.#pending.delete(header.conn);
      if (pending === undefined) socket.destroy();
      else pending.resolve(socket);
      return;
    }
    void this.#carryToOwner(header.conn, header.port, socket);
  }

  /** A connection accepted on a proxy port: open it on the owner, then join the streams. */
  async #carryToOwner(conn: string, port: number, socket: Socket): Promise<void> {
    const owner = this.#registry.get(port);
    const refuse = (): void => {
      this.#agent.send({ type: "reset", conn });
      socket.destroy();
    };
    if (owner === undefined || owner.node === this.#o.node || !this.#o.isNodeAlive(owner.node)) return refuse();
    const toOwner = newStreamId();
    const toCaller = newStreamId();
    // The streams first: bytes flow as soon as the owner's reader grants credit, and set-up costs one
    // round trip less than waiting for the reply. A refusal or a silent owner aborts them.
    const bridge = this.#join(conn, socket, new StreamWriter(this.#o.transport, toOwner), new StreamReader(this.#o.transport, toCaller));
    let reply: ConnectReply;
    try {
      const msg = await this.#o.nc.request(netstackConnectSubject(owner.node), encode({ type: "connect", port, toOwner, toCaller }), {
        timeout: CONNECT_REQUEST_TIMEOUT_MS,
      });
      reply = parseConnectReply(decode(msg.data));
    } catch (error) {
      this.#o.logger.debug({ port, err: String(error) }, "netstack: owner did not answer");
      return bridge.abort();
    }
    if (reply.type !== "connected") {
      this.#o.logger.debug({ port, code: reply.code, message: reply.message }, "netstack: owner refused");
      bridge.abort();
    }
  }

  /** The owner's side: connect to the real server on our loopback, then answer. */
  async #onConnectRequest(msg: Msg): Promise<void> {
    let reply: ConnectReply;
    let streams: { out: StreamWriter; input: StreamReader } | undefined;
    try {
      const request = parseConnectRequest(decode(msg.data));
      // Only ports this node's servers listen on: the request cannot open anything else here.
      if (!this.#mine.has(request.port)) throw new KernelError("EINVAL", `port ${request.port} is not listening on ${this.#o.node}`);
      // Before the local connect: the caller's first bytes and its credit are on their way meanwhile.
      streams = { out: new StreamWriter(this.#o.transport, request.toCaller), input: new StreamReader(this.#o.transport, request.toOwner) };
      // Until the bridge owns them, a reset from the caller must not be an unhandled 'error'.
      streams.out.on("error", () => undefined);
      streams.input.on("error", () => undefined);
      const addresses = this.#registry.get(request.port)?.addresses ?? [];
      const v4 = addresses.length === 0 || addresses.some((a) => !a.includes(":") || a === "::");
      const conn = `o${this.#nextConn++}`;
      const socket = await new Promise<Socket>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#pending.delete(conn);
          reject(new KernelError("ETIMEDOUT", "local connect timed out"));
        }, LOCAL_CONNECT_TIMEOUT_MS);
        this.#pending.set(conn, {
          resolve: (s) => (clearTimeout(timer), resolve(s)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        this.#agent.send({ type: "connect", conn, host: v4 ? "127.0.0.1" : "::1", port: request.port });
      });
      this.#join(conn, socket, streams.out, streams.input);
      reply = { type: "connected" };
    } catch (error) {
      streams?.out.destroy(new KernelError("ECONNRESET", "connection refused"));
      streams?.input.destroy();
      const e = error instanceof KernelError ? error : new KernelError("EIO", String(error));
      reply = { type: "refused", code: e.code, message: e.message };
    }
    replyTo(msg, reply); // a caller that gave up: its streams time out, and ours with them
  }

  #join(conn: string, socket: Socket, out: StreamWriter, input: StreamReader): ConnectionBridge {
    const bridge = new ConnectionBridge(socket, out, input, () => this.#agent.send({ type: "reset", conn }));
    this.#bridges.set(conn, bridge);
    void bridge.closed.then(() => this.#bridges.delete(conn));
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
    for (const b of this.#bridges.values()) b.reset();
    await this.#agent.close();
    await Promise.all([...this.#mine.keys()].map((p) => this.#kv.delete(String(p)).catch(() => undefined)));
  }
}
