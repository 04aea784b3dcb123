import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { KernelError } from "../../pseudokernel/index.js";

/** The cluster port registry: key = the port number, value = a `PortRecord` (the node that listens). */
export const PORTS_BUCKET = "oneos_ports";

/** Opens the registry, creating it when `replicas` is given (runtimes), binding only otherwise (the CLI). */
export async function openPortRegistry(nc: NatsConnection, options: { replicas?: number; timeoutMs?: number } = {}): Promise<KV> {
  const kvm = new Kvm(nc);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    try {
      return options.replicas === undefined
        ? await kvm.open(PORTS_BUCKET, { bindOnly: true })
        : await kvm.create(PORTS_BUCKET, { replicas: options.replicas, history: 1 });
    } catch (error) {
      if (Date.now() > deadline) throw new KernelError("EIO", `cannot open bucket ${PORTS_BUCKET}: ${(error as Error).message}`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
