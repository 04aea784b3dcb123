import { FsError } from "./errors.js";

/**
 * Bounds a NATS operation: when the node's server is gone, nats.js may queue a request until it
 * reconnects, so every store call is raced against `ms` and turns into EIO instead of hanging.
 */
export async function withTimeout<T>(what: string, ms: number, op: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FsError("EIO", `${what}: no answer from NATS in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([op(), timeout]);
  } catch (err) {
    if (err instanceof FsError) throw err;
    throw new FsError("EIO", `${what}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
