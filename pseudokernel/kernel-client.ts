import { randomBytes } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readAll, openClusterBuckets, type ClusterBuckets } from "./buckets.js";
import { decode, encode } from "./codec.js";
import { fromWireError, KernelError } from "./errors.js";
import {
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
import { nodeSubject } from "./subjects.js";

/** A node not heard from for this long is `suspect`; twice as long, `down`. Heartbeats come each second. */
export const SUSPECT_AFTER_MS = 2000;
export const DOWN_AFTER_MS = 4000;

/** A node's state as a reader sees it now: its own claim, aged by the time since its last heartbeat. */
export function effectiveNodeState(record: NodeRecord, now: number): NodeState {
  if (record.state !== "ready") return record.state;
  const age = now - record.heartbeat;
  if (age > DOWN_AFTER_MS) return "down";
  if (age > SUSPECT_AFTER_MS) return "suspect";
  return "ready";
}

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

  private constructor(nc: NatsConnection, buckets: ClusterBuckets) {
    this.nc = nc;
    this.buckets = buckets;
    this.transport = natsTransport(nc);
  }

  static async connect(url: string, options: { name: string; timeoutMs?: number }): Promise<KernelClient> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: url,
        name: options.name,
        timeout: options.timeoutMs ?? 5000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
    } catch (error) {
      throw new KernelError("EIO", `cannot reach the cluster at ${url}: ${(error as Error).message}`, { cause: error });
    }
    return KernelClient.fromConnection(nc, options.timeoutMs);
  }

  static async fromConnection(nc: NatsConnection, timeoutMs = 15_000): Promise<KernelClient> {
    return new KernelClient(nc, await openClusterBuckets(nc, { timeoutMs }));
  }

  async nodes(): Promise<(NodeRecord & { readonly effective: NodeState })[]> {
    const now = Date.now();
    const records = await readAll(this.buckets.nodes, parseNodeRecord);
    return records
      .map((r) => ({ ...r, effective: effectiveNodeState(r, now) }))
      .sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  }

  async processes(): Promise<ProcessRecord[]> {
    const records = await readAll(this.buckets.procs, parseProcessRecord);
    return records.sort((a, b) => a.pid - b.pid);
  }

  async process(pid: number): Promise<ProcessRecord | null> {
    const entry = await this.buckets.procs.get(String(pid));
    if (entry === null || entry.operation !== "PUT") return null;
    try {
      return parseProcessRecord(decode(entry.value));
    } catch {
      return null;
    }
  }

  /** One request to a node's kernel API; transport failures become KernelErrors with a clear message. */
  async request(node: string, request: NodeRequest, timeoutMs = 10_000): Promise<NodeReply> {
    const verb = request.type;
    let reply: NodeReply;
    try {
      const msg = await this.nc.request(nodeSubject(node, verb), encode(request), { timeout: timeoutMs });
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

  /** Sends a signal to a cluster process wherever it runs. */
  async signal(pid: number, signal: string, user: string): Promise<void> {
    const record = await this.process(pid);
    if (record === null) throw new KernelError("ESRCH", `(${pid}) - No such process`);
    if (record.state !== "running" && record.state !== "stopped") {
      throw new KernelError("ESRCH", `(${pid}) - No such process (${record.state})`);
    }
    await this.request(record.node, { type: "signal", pid, signal, user });
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
