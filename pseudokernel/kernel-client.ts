import { randomBytes } from "node:crypto";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { readAll, openClusterBuckets, type ClusterBuckets } from "./buckets.js";
import { decode, encode } from "./codec.js";
import { fromWireError, KernelError } from "./errors.js";
import {
  parseClusterPs,
  parseClusterView,
  parseNodeRecord,
  parseNodeReply,
  parseProcessRecord,
  type NodeRecord,
  type NodeReply,
  type NodeRequest,
  type NodeState,
  type ProcessRecord,
} from "./messages.js";
import { StreamReader } from "./stream/stream-reader.js";
import { StreamWriter } from "./stream/stream-writer.js";
import { natsTransport, type StreamTransport } from "./stream/transport.js";
import { connectNats, type NatsCredentials } from "./nats-connect.js";
import { retrying } from "./retry.js";
import { compareNodeNames, DOWN_AFTER_MS, SUSPECT_AFTER_MS, type NodeView } from "./node-table.js";
import { gatherLiveProcesses, withLiveness } from "./process-table.js";
import { CLUSTER_PS_SUBJECT, CLUSTER_VIEW_SUBJECT, nodeSubject } from "./subjects.js";
import { authSubject, parseAuthReply, type AuthReply, type AuthRequest, type UserInfo } from "./auth-messages.js";
import { SESSION_HEADER } from "./session.js";

/** A logged-in user's session: the token the runtimes check, when it ends, and who it is. */
export interface Session {
  readonly token: string;
  readonly exp: number;
  readonly user: UserInfo;
}

/** A node's state judged from its stored record alone (when no runtime answers): its claim, aged. */
export function effectiveNodeState(record: NodeRecord, now: number): NodeState {
  if (record.state !== "ready") return record.state;
  const age = now - record.heartbeat;
  if (age > DOWN_AFTER_MS) return "down";
  if (age > SUSPECT_AFTER_MS) return "suspect";
  return "ready";
}

/**
 * Reads of cluster state retry this long: after a server is lost, the buckets' streams elect new
 * leaders in a few seconds and answer with time-outs meanwhile.
 */
const READ_RETRY = { timeoutMs: 15_000, what: "read cluster state" } as const;
/** A runtime answers the view request from memory: if none does within this, fall back to the bucket. */
const VIEW_TIMEOUT_MS = 1500;
/** Live answers come within milliseconds of each other: this long without one means all are in. */
const LIVE_STALL_MS = 100;

/** A fresh stream id: 96 random bits, subject-token safe. */
export function newStreamId(): string {
  return randomBytes(12).toString("base64url");
}

/**
 * The kernel API as a client sees it: the shell, the CLI verbs and the desktop all go through this.
 *
 * @example
 * const kernel = await KernelClient.connect("nats://127.0.0.1:4222", { name: "ps" });
 * console.log(await kernel.processes());
 * await kernel.close();
 */
export class KernelClient {
  readonly nc: NatsConnection;
  readonly buckets: ClusterBuckets;
  readonly transport: StreamTransport;
  /** The session kernel requests are made in (its token goes in each request's header). */
  session: Session | undefined;
  #pendingSession: Promise<Session> | undefined;

  private constructor(nc: NatsConnection, buckets: ClusterBuckets) {
    this.nc = nc;
    this.buckets = buckets;
    this.transport = natsTransport(nc);
  }

  /** `credentials`: the identity to connect as (nkey + TLS); without, an anonymous plain connection. */
  static async connect(
    url: string,
    options: { name: string; timeoutMs?: number; credentials?: NatsCredentials | undefined },
  ): Promise<KernelClient> {
    const nc = await connectNats({
      servers: url,
      name: options.name,
      credentials: options.credentials,
      timeout: options.timeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    try {
      return await KernelClient.fromConnection(nc, options.timeoutMs);
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /**
   * A session for `user` without a password, `issue`d through the admin identity: the cluster owner's
   * root shell, the desktop's owner token, the benchmarks. The admin connection lives for this request only.
   */
  static async issueSession(url: string, admin: NatsCredentials | undefined, user: string): Promise<Session> {
    const privileged = await KernelClient.connect(url, { name: "oneos-issue", credentials: admin, timeoutMs: 5000 });
    try {
      return await privileged.startSession({ type: "issue", user });
    } finally {
      await privileged.close();
    }
  }

  static async fromConnection(nc: NatsConnection, timeoutMs = 15_000): Promise<KernelClient> {
    return new KernelClient(nc, await openClusterBuckets(nc, { timeoutMs }));
  }

  /**
   * Every node with its state now. Asks a runtime for its view (liveness from core heartbeats, current
   * even while JetStream elects leaders); with no runtime answering, ages the stored records.
   */
  async nodes(): Promise<NodeView[]> {
    try {
      const msg = await this.nc.request(CLUSTER_VIEW_SUBJECT, encode({ type: "view" }), { timeout: VIEW_TIMEOUT_MS });
      return parseClusterView(decode(msg.data));
    } catch {
      const records = await retrying(() => readAll(this.buckets.nodes, parseNodeRecord), READ_RETRY);
      const now = Date.now();
      return records
        .map((r) => ({ ...r, effective: effectiveNodeState(r, now) }))
        .sort((a, b) => compareNodeNames(a.name, b.name));
    }
  }

  /**
   * The process table. A process still `running` on a node that is down is reported `lost` at once:
   * the leader's durable mark may wait for a JetStream election, the reader need not.
   */
  async processes(): Promise<ProcessRecord[]> {
    // Every runtime that is up answers the live request: once they all have, nobody waits for a stall.
    const up = this.nodes().then(
      (nodes) => nodes.filter((n) => n.effective !== "down").length,
      () => undefined,
    );
    const [table, live] = await Promise.all([this.#processTable(), this.#liveProcesses(up)]);
    // What the runtimes run now wins over the table's copy, which may lag behind an election.
    const merged = new Map(table.map((p) => [p.pid, p]));
    for (const p of live) merged.set(p.pid, p);
    return [...merged.values()].sort((a, b) => a.pid - b.pid);
  }

  /** The durable table, from a runtime's mirror, else from the bucket itself. */
  async #processTable(): Promise<ProcessRecord[]> {
    try {
      const msg = await this.nc.request(CLUSTER_PS_SUBJECT, encode({ type: "ps" }), { timeout: VIEW_TIMEOUT_MS });
      return parseClusterPs(decode(msg.data));
    } catch {
      const [records, nodes] = await Promise.all([
        retrying(() => readAll(this.buckets.procs, parseProcessRecord), READ_RETRY),
        this.nodes(),
      ]);
      const down = new Set(nodes.filter((n) => n.effective === "down").map((n) => n.name));
      return records.map((p) => withLiveness(p, down));
    }
  }

  /**
   * Each runtime's running processes, gathered until the answers stop coming, or until as many came
   * as `expected` resolves to (the runtimes that are up) if it has by then.
   */
  async #liveProcesses(expected?: Promise<number | undefined>): Promise<ProcessRecord[]> {
    return await gatherLiveProcesses(this.nc, { stallMs: LIVE_STALL_MS, maxWaitMs: VIEW_TIMEOUT_MS, ...(expected !== undefined ? { expected } : {}) });
  }


  async process(pid: number): Promise<ProcessRecord | null> {
    const entry = await retrying(() => this.buckets.procs.get(String(pid)), READ_RETRY);
    if (entry === null || entry.operation !== "PUT") {
      // Started a moment ago: its runtime writes the first record a little later, but knows it now.
      return (await this.#liveProcesses()).find((p) => p.pid === pid) ?? null;
    }
    try {
      return parseProcessRecord(decode(entry.value));
    } catch {
      return null;
    }
  }

  /**
   * For an admin client: the first kernel request that needs a session gets one `issue`d for `user`
   * (the admin identity may), so verbs that need none (`ps`, `nodes`) never ask.
   */
  issueSessionsFor(user: string): void {
    this.#pendingSession = undefined;
    this.#sessionFor = user;
  }

  #sessionFor: string | undefined;

  async #ensureSession(): Promise<void> {
    if (this.session !== undefined && this.session.exp > Date.now() + 60_000) return;
    if (this.#sessionFor === undefined) return;
    const user = this.#sessionFor;
    this.#pendingSession ??= this.startSession({ type: "issue", user }).finally(() => (this.#pendingSession = undefined));
    await this.#pendingSession;
  }

  #sessionHeaders(): MsgHdrs | undefined {
    if (this.session === undefined) return undefined;
    const h = headers();
    h.set(SESSION_HEADER, this.session.token);
    return h;
  }

  /** One request to the users-and-sessions service. */
  async auth(request: AuthRequest, timeoutMs = 10_000): Promise<AuthReply> {
    const subject = authSubject(request.type);
    let reply: AuthReply;
    try {
      const h = this.#sessionHeaders();
      const msg = await this.nc.request(subject, encode(request), { timeout: timeoutMs, ...(h !== undefined ? { headers: h } : {}) });
      reply = parseAuthReply(decode(msg.data));
    } catch (error) {
      if (error instanceof KernelError) throw error;
      const text = (error as Error).message;
      if (/permissions? violation/i.test(text)) throw new KernelError("EPERM", `${request.type}: not permitted for this identity`, { cause: error });
      throw new KernelError(/timeout|no responders/i.test(text) ? "ETIMEDOUT" : "EIO", `${request.type}: no runtime answered (${text})`, { cause: error });
    }
    if (reply.type === "error") throw fromWireError(reply.error);
    return reply;
  }

  /** Logs in (or takes a session `issue`d by the admin identity) and makes later requests in it. */
  async startSession(request: Extract<AuthRequest, { type: "login" | "issue" }>): Promise<Session> {
    const reply = await this.auth(request);
    if (reply.type !== "session") throw new KernelError("EIO", `${request.type}: unexpected answer ${reply.type}`);
    this.session = { token: reply.token, exp: reply.exp, user: reply.user };
    return this.session;
  }

  /** Swaps the session for a fresh one (call it well before `exp`). */
  async refreshSession(): Promise<Session> {
    const reply = await this.auth({ type: "refresh" });
    if (reply.type !== "session") throw new KernelError("EIO", `refresh: unexpected answer ${reply.type}`);
    this.session = { token: reply.token, exp: reply.exp, user: reply.user };
    return this.session;
  }

  /** One request to a node's kernel API; transport failures become KernelErrors with a clear message. */
  async request(node: string, request: NodeRequest, timeoutMs = 10_000): Promise<NodeReply> {
    const verb = request.type;
    let reply: NodeReply;
    if (verb !== "ping") await this.#ensureSession();
    try {
      const h = this.#sessionHeaders();
      const msg = await this.nc.request(nodeSubject(node, verb), encode(request), { timeout: timeoutMs, ...(h !== undefined ? { headers: h } : {}) });
      reply = parseNodeReply(decode(msg.data));
    } catch (error) {
      if (error instanceof KernelError) throw error;
      const text = (error as Error).message;
      const code = /no responders/i.test(text) ? "ENONODE" : /timeout/i.test(text) ? "ETIMEDOUT" : "EIO";
      throw new KernelError(code, `node ${node}: ${code === "ENONODE" ? "not running" : text}`, { cause: error });
    }
    if (reply.type === "error") throw fromWireError(reply.error);
    return reply;
  }

  /** The last output of a cluster process (up to 64 KiB of it; `total`: all it wrote), wherever it runs. */
  async tail(pid: number): Promise<{ data: Uint8Array; total: number }> {
    const record = await this.process(pid);
    if (record === null) throw new KernelError("ESRCH", `(${pid}) - No such process`);
    const reply = await this.request(record.node, { type: "tail", pid });
    if (reply.type !== "output") throw new KernelError("EIO", `tail: unexpected answer ${reply.type}`);
    return { data: reply.data, total: reply.total };
  }

  /** Sends a signal to a cluster process wherever it runs (as this client's session's user). */
  async signal(pid: number, signal: string): Promise<void> {
    const record = await this.process(pid);
    if (record === null) throw new KernelError("ESRCH", `(${pid}) - No such process`);
    if (record.state !== "running" && record.state !== "stopped") {
      throw new KernelError("ESRCH", `(${pid}) - No such process (${record.state})`);
    }
    await this.request(record.node, { type: "signal", pid, signal });
  }

  reader(id: string): StreamReader {
    return new StreamReader(this.transport, id);
  }

  writer(id: string): StreamWriter {
    return new StreamWriter(this.transport, id);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}
