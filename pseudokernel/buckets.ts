import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { decode } from "./codec.js";
import { KernelError } from "./errors.js";
import { BUCKETS } from "./subjects.js";

/** The cluster-state buckets every runtime and client uses. */
export interface ClusterBuckets {
  readonly nodes: KV;
  readonly procs: KV;
  readonly pids: KV;
}

/**
 * Opens the cluster-state buckets, creating them (idempotently: several runtimes start at once) when
 * `replicas` is given, after waiting a bounded time for JetStream to elect its meta leader on a cold
 * start. Without `replicas` it binds to existing buckets without asking the server anything.
 */
export async function openClusterBuckets(
  nc: NatsConnection,
  options: { replicas?: number; timeoutMs?: number } = {},
): Promise<ClusterBuckets> {
  // Creating needs JetStream up; a client only binds (no request at all), so a shell starts and runs
  // commands even while a stream elects a new leader after a lost server.
  if (options.replicas !== undefined) await waitForJetStream(nc, options.timeoutMs ?? 30_000);
  const open = (name: string): Promise<KV> => openBucket(nc, name, options);
  return { nodes: await open(BUCKETS.nodes), procs: await open(BUCKETS.procs), pids: await open(BUCKETS.pids) };
}

/**
 * Opens one KV bucket: creates it (idempotently, history 1) with `replicas` — runtimes do — or binds
 * to it without asking the server anything — clients do. Retries until `timeoutMs` (JetStream may be
 * electing a leader).
 */
export async function openBucket(nc: NatsConnection, name: string, options: { replicas?: number; timeoutMs?: number } = {}): Promise<KV> {
  const kvm = new Kvm(nc);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    try {
      return options.replicas === undefined
        ? await kvm.open(name, { bindOnly: true })
        : await kvm.create(name, { replicas: options.replicas, history: 1 });
    } catch (error) {
      if (Date.now() > deadline) {
        throw new KernelError("EIO", `cannot open bucket ${name}: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Resolves once this server's JetStream answers (a fresh cluster needs a few seconds to elect a leader). */
export async function waitForJetStream(nc: NatsConnection, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const jsm = await jetstreamManager(nc, { timeout: 2000 }).catch(() => undefined);
  for (;;) {
    try {
      const manager = jsm ?? (await jetstreamManager(nc, { timeout: 2000 }));
      await manager.getAccountInfo();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new KernelError("ETIMEDOUT", `JetStream not ready after ${timeoutMs} ms: ${(error as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Every current value of a bucket, decoded and validated by `parse`; entries that fail validation are
 * skipped (a hostile or stale writer cannot break `ps`).
 */
export async function readAll<T>(kv: KV, parse: (value: unknown) => T, timeoutMs = 5000): Promise<T[]> {
  const status = await kv.status();
  if (status.values === 0) return [];
  const out: T[] = [];
  const watcher = await kv.watch();
  const timer = setTimeout(() => watcher.stop(), timeoutMs);
  try {
    for await (const entry of watcher) {
      if (entry.operation === "PUT") {
        try {
          out.push(parse(decode(entry.value)));
        } catch {
          // skipped: not a valid record
        }
      }
      if (entry.isUpdate || entry.delta === 0 || entry.delta === undefined) break;
    }
  } finally {
    clearTimeout(timer);
    watcher.stop();
  }
  return out;
}
