import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { BLOCK_BUCKET, META_BUCKET } from "./buckets.js";

export interface CloudFsUsage {
  /** Bytes JetStream stores for file data (per replica). */
  readonly blockBytes: number;
  readonly blocks: number;
  /** Bytes of metadata (inodes, directory entries). */
  readonly metaBytes: number;
  /** Metadata records: inodes + directory entries. */
  readonly metaRecords: number;
  readonly replicas: number;
}

/** `oneos df`: what CloudFS stores in JetStream, read from the buckets' stream state. */
export async function cloudFsUsage(nc: NatsConnection): Promise<CloudFsUsage> {
  const kvm = new Kvm(nc);
  const meta = await (await kvm.open(META_BUCKET, { bindOnly: true })).status();
  const blocks = await (await kvm.open(BLOCK_BUCKET, { bindOnly: true })).status();
  return {
    blockBytes: blocks.size,
    blocks: blocks.values,
    metaBytes: meta.size,
    metaRecords: meta.values,
    replicas: blocks.replicas,
  };
}
