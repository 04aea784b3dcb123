import type { NatsConnection } from "@nats-io/transport-node";
import { StorageType } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { MAX_BLOCK_VALUE_BYTES } from "./block-store.js";
import {
  encodeDirEntry,
  encodeInode,
  INO_COUNTER_KEY,
  inodeKey,
  dirEntryKey,
  newInode,
  ROOT_INO,
} from "./records.js";
import { encodeName } from "./name-codec.js";

export const META_BUCKET = "cloudfs-meta";
export const BLOCK_BUCKET = "cloudfs-blocks";
export const CAS_LOCK_BUCKET = "cloudfs-cas";
/**
 * How long a compare-and-set claim lives. A claim only has to outlive the one update it guards (a
 * few ms); an update that arrives later than this finds the key's revision moved and fails anyway.
 */
export const CAS_LOCK_TTL_MS = 30_000;
/** Inode numbers are handed out in ranges so a create costs no extra round trip; 1 and 2 are root and /home. */
export const FIRST_FREE_INO = 16;

export interface CloudFsBuckets {
  readonly meta: KV;
  readonly blocks: KV;
  /** Claims `<key>.<revision>` that make compare-and-set safe on R3 streams (see meta-store.ts). */
  readonly locks: KV;
}

/**
 * Creates (or opens) the metadata and block buckets and the root and `/home` directories. Safe when
 * several nodes run it at once: bucket creation is idempotent on the server and every record is made
 * with `create` (first writer wins, the others find it there).
 */
export async function ensureCloudFsBuckets(
  nc: NatsConnection,
  options: {
    readonly replicas?: number;
    readonly timeoutMs?: number;
    /** How long to wait for JetStream to elect its leaders after a cluster starts. */
    readonly readyTimeoutMs?: number;
  } = {},
): Promise<CloudFsBuckets> {
  const replicas = options.replicas ?? (await defaultReplicas(nc));
  const kvm = new Kvm(nc);
  const timeout = options.timeoutMs ?? 10_000;
  // Metadata reads after an open must see the latest committed revision: direct gets could be served
  // by a lagging follower, so they are off for this bucket (close-to-open consistency).
  const meta = await retryUntil(options.readyTimeoutMs ?? 60_000, () =>
    kvm.create(META_BUCKET, { history: 1, replicas, allow_direct: false, timeout }),
  );
  // Blocks are immutable, so any replica's copy is right: direct gets are fine and faster.
  const blocks = await retryUntil(options.readyTimeoutMs ?? 60_000, () =>
    kvm.create(BLOCK_BUCKET, { history: 1, replicas, maxValueSize: MAX_BLOCK_VALUE_BYTES, timeout }),
  );
  const locks = await retryUntil(options.readyTimeoutMs ?? 60_000, () =>
    // Claims live seconds: memory storage (still replicated) spares the disk.
    kvm.create(CAS_LOCK_BUCKET, {
      history: 1,
      replicas,
      allow_direct: false,
      ttl: CAS_LOCK_TTL_MS,
      storage: StorageType.Memory,
      timeout,
    }),
  );
  const now = Date.now();
  await createIfMissing(meta, inodeKey(ROOT_INO), encodeInode({ ...newInode("dir", 0o755, 0, 0, now), nlink: 3 }));
  await createIfMissing(meta, inodeKey(2), encodeInode({ ...newInode("dir", 0o755, 0, 0, now), home: ROOT_INO }));
  await createIfMissing(meta, dirEntryKey(ROOT_INO, encodeName("home")), encodeDirEntry({ ino: 2, type: "dir" }));
  await createIfMissing(meta, INO_COUNTER_KEY, new TextEncoder().encode(String(FIRST_FREE_INO)));
  return { meta, blocks, locks };
}

async function createIfMissing(kv: KV, key: string, value: Uint8Array): Promise<void> {
  const existing = await kv.get(key);
  if (existing !== null && existing.operation === "PUT") return;
  try {
    await kv.create(key, value);
  } catch (err) {
    const again = await kv.get(key);
    if (again === null || again.operation !== "PUT") throw err;
  }
}

/** R3 when the cluster has at least three JetStream servers, else R1. */
export async function defaultReplicas(nc: NatsConnection): Promise<number> {
  // Give the server a moment to gossip the cluster's URLs after connect.
  if ((nc.info?.connect_urls?.length ?? 0) === 0) await new Promise((r) => setTimeout(r, 200));
  const servers = nc.info?.connect_urls?.length ?? 0;
  // connect_urls lists the client URLs of every server in the cluster (including this one).
  return servers >= 3 ? 3 : 1;
}

/**
 * Retries `op` until it succeeds or `ms` pass: right after a cluster starts, JetStream answers with
 * timeouts or "no leader" errors until its meta leader is elected.
 */
async function retryUntil<T>(ms: number, op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
