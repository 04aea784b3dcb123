import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { AUDIT_STREAM, KernelError } from "../pseudokernel/index.js";
import { connectKernel } from "./find-cluster.js";

/**
 * `oneos audit [--last N] [--follow]`: the cluster's audit log (logins, spawns, kills, user changes),
 * one JSON line each, oldest first. Only the admin identity may read it.
 */
export async function auditVerb(options: { nats?: string; last?: string; follow?: boolean }): Promise<number> {
  const last = options.last === undefined ? undefined : Number(options.last);
  if (last !== undefined && (!Number.isInteger(last) || last < 1)) throw new KernelError("EINVAL", `--last ${options.last}: expected a positive integer`);
  const kernel = await connectKernel(options.nats, "oneos-audit");
  try {
    const jsm = await jetstreamManager(kernel.nc, { timeout: 5000 });
    const info = await jsm.streams.info(AUDIT_STREAM).catch((error: Error) => {
      throw new KernelError(/permission/i.test(error.message) ? "EPERM" : "EIO", `audit log: ${error.message}`, { cause: error });
    });
    const end = info.state.last_seq;
    const start = last === undefined ? info.state.first_seq : Math.max(info.state.first_seq, end - last + 1);
    if (end < start && options.follow !== true) return 0;
    const consumer = await jetstream(kernel.nc).consumers.get(AUDIT_STREAM, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, start),
    });
    const messages = await consumer.consume();
    for await (const m of messages) {
      process.stdout.write(`${m.string()}\n`);
      if (options.follow !== true && m.seq >= end) break;
    }
    await messages.close();
    return 0;
  } finally {
    await kernel.close();
  }
}
