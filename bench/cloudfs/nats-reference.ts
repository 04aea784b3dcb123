import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { requestNodeStatus } from "../../vfs-fuse/index.js";
import type { WriteBackStatus } from "../../vfs-fuse/write-back.js";

const MiB = 1024 * 1024;

/**
 * The reference for CloudFS's fsync'd write: `totalBytes` of 1 MiB values put into a fresh R3 KV
 * bucket, `inFlight` puts outstanding, timed from the first put to the last acknowledgement. The
 * bucket is destroyed afterwards (its 3 copies would otherwise stay on the servers' disks).
 * Resolves with MB/s.
 */
export async function rawKvPutMBps(
  nc: NatsConnection,
  options: { readonly bucket: string; readonly totalBytes: number; readonly replicas?: number; readonly valueBytes?: number; readonly inFlight?: number },
): Promise<number> {
  const valueBytes = options.valueBytes ?? MiB;
  const inFlight = options.inFlight ?? 16;
  const kvm = new Kvm(nc);
  const kv = await retryFor(60_000, () => kvm.create(options.bucket, { history: 1, replicas: options.replicas ?? 3, timeout: 10_000 }));
  try {
    // Non-constant bytes, so nothing on the way can make the values smaller than they are.
    const value = new Uint8Array(valueBytes);
    for (let i = 0; i < value.length; i++) value[i] = (i * 2654435761) >>> 24;
    const count = Math.max(1, Math.ceil(options.totalBytes / valueBytes));
    // One put first, outside the clock: the stream's leader is elected and the connection warm.
    await kv.put("warm-up", value.subarray(0, 1024));
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < count) await kv.put(`v.${next++}`, value);
      }),
    );
    const ms = performance.now() - started;
    return (count * valueBytes) / 1e6 / (ms / 1000);
  } finally {
    await kv.destroy().catch(() => false);
  }
}

/** What an fs-daemon says on `oneos.cloudfs.<nodeId>.status` (the same reply `oneos df` shows). */
export type DaemonStatus = WriteBackStatus;

/** Asks a daemon for its write-back state; rejects if it does not answer (no responders, timeout, bad reply). */
export async function daemonStatus(nc: NatsConnection, nodeId: string, timeoutMs = 2_000): Promise<DaemonStatus> {
  const status = await requestNodeStatus(nc, nodeId, timeoutMs);
  if (typeof status.dirtyBytes !== "number" || typeof status.pendingOps !== "number" || typeof status.purgesPending !== "number") {
    throw new Error(`unexpected status reply ${JSON.stringify(status).slice(0, 200)}`);
  }
  return status;
}

/** How a wait for a daemon to have stored everything ended. */
export type StoredWait =
  | { readonly kind: "stored"; readonly ms: number }
  | { readonly kind: "timeout"; readonly ms: number; readonly last: DaemonStatus }
  | { readonly kind: "no-status"; readonly reason: string };

/**
 * Polls a daemon until it reports nothing dirty and nothing pending (with `purged`, no block left to
 * purge either: JetStream idle for the next measurement); resolves with the time that took, counted
 * from the call (the caller calls right after the last close it wants covered).
 */
export async function waitUntilStored(
  nc: NatsConnection,
  nodeId: string,
  options: { readonly timeoutMs?: number; readonly everyMs?: number; readonly purged?: boolean } = {},
): Promise<StoredWait> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? 600_000;
  let last: DaemonStatus;
  try {
    last = await daemonStatus(nc, nodeId);
  } catch (err) {
    return { kind: "no-status", reason: (err as Error).message.split("\n")[0] ?? String(err) };
  }
  for (;;) {
    if (last.dirtyBytes === 0 && last.pendingOps === 0 && (options.purged !== true || last.purgesPending === 0)) return { kind: "stored", ms: performance.now() - started };
    if (performance.now() - started > timeoutMs) return { kind: "timeout", ms: performance.now() - started, last };
    await new Promise((r) => setTimeout(r, options.everyMs ?? 20));
    try {
      last = await daemonStatus(nc, nodeId);
    } catch {
      // A busy daemon may miss one poll's deadline: ask again.
    }
  }
}

async function retryFor<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
