import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { BLOCK_BUCKET, META_BUCKET } from "./buckets.js";
import { statusSubject } from "./leases.js";
import type { CloudFsNodeStatus } from "./peer-service.js";

/** How long `oneos df` waits for each node's write-back state. */
const NODE_STATUS_TIMEOUT_MS = 1_000;

export interface CloudFsUsage {
  /** Bytes JetStream stores for file data (per replica). */
  readonly blockBytes: number;
  readonly blocks: number;
  /** Bytes of metadata (inodes, directory entries). */
  readonly metaBytes: number;
  /** Metadata records: inodes + directory entries. */
  readonly metaRecords: number;
  readonly replicas: number;
  /** Each mounted node's write-back: dirty bytes, oldest unstored change, leases held. */
  readonly nodes: CloudFsNodeStatus[];
}

/** One node's write-back state, as its mount answers; rejects when it does not within `timeoutMs`. */
export async function requestNodeStatus(nc: NatsConnection, node: string, timeoutMs = NODE_STATUS_TIMEOUT_MS): Promise<CloudFsNodeStatus> {
  const m = await nc.request(statusSubject(node), "", { timeout: timeoutMs });
  return JSON.parse(new TextDecoder().decode(m.data)) as CloudFsNodeStatus;
}

/** One node's write-back state; undefined when it does not answer within `timeoutMs`. */
export function cloudFsNodeStatus(nc: NatsConnection, node: string, timeoutMs = NODE_STATUS_TIMEOUT_MS): Promise<CloudFsNodeStatus | undefined> {
  return requestNodeStatus(nc, node, timeoutMs).catch(() => undefined);
}

/** `oneos df`: what CloudFS stores in JetStream, read from the buckets' stream state. */
export async function cloudFsUsage(nc: NatsConnection): Promise<CloudFsUsage> {
  const kvm = new Kvm(nc);
  const metaKv = await kvm.open(META_BUCKET, { bindOnly: true });
  const meta = await metaKv.status();
  // Every mounted node renews its liveness record n.<node>; ask each for its write-back state.
  const names: string[] = [];
  for await (const k of await metaKv.keys("n.*")) names.push(k.slice(2));
  const nodes = (await Promise.all(names.sort().map((n) => cloudFsNodeStatus(nc, n)))).filter((s): s is CloudFsNodeStatus => s !== undefined);
  const blocks = await (await kvm.open(BLOCK_BUCKET, { bindOnly: true })).status();
  return {
    blockBytes: blocks.size,
    blocks: blocks.values,
    metaBytes: meta.size,
    metaRecords: meta.values,
    replicas: blocks.replicas,
    nodes,
  };
}
