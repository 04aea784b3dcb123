import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { openBucket } from "../../pseudokernel/index.js";

/** The cluster port registry: key = the port number, value = a `PortRecord` (the node that listens). */
export const PORTS_BUCKET = "oneos_ports";

/** Opens the registry, creating it when `replicas` is given (runtimes), binding only otherwise (the CLI). */
export async function openPortRegistry(nc: NatsConnection, options: { replicas?: number; timeoutMs?: number } = {}): Promise<KV> {
  return await openBucket(nc, PORTS_BUCKET, options);
}
