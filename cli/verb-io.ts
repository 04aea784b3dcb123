import type { Writable } from "node:stream";
import type { KernelClient } from "../pseudokernel/index.js";
import { connectKernel } from "./find-cluster.js";

/**
 * Where a client verb runs: from the host CLI (a connection of its own, as the admin, and the
 * process's streams), or inside the shell (the session's connection, as its user, and the builtin's
 * streams, which may be a pipe).
 */
export interface VerbIo {
  readonly kernel?: KernelClient;
  readonly out: Writable;
  readonly err: Writable;
}

export const PROCESS_IO: VerbIo = { out: process.stdout, err: process.stderr };

/** Runs `fn` with the context's connection, or with one of its own to `--nats URL` or the local cluster. */
export async function withKernel<T>(io: VerbIo, nats: string | undefined, name: string, fn: (kernel: KernelClient) => Promise<T>): Promise<T> {
  if (io.kernel !== undefined) return await fn(io.kernel);
  const kernel = await connectKernel(nats, name);
  try {
    return await fn(kernel);
  } finally {
    await kernel.close();
  }
}

/** Writes and waits until the stream took it (a pipe to a slow reader holds the verb back). */
export function write(stream: Writable, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => stream.write(data, (error) => (error ? reject(error) : resolve())));
}
