import { KernelError } from "./errors.js";

/**
 * Retries a JetStream operation that may fail while the cluster settles (a fresh stream electing its
 * leader, a server restarting). KernelErrors are answers, not transient failures: they are not retried.
 *
 * @example
 * const entry = await retrying(() => kv.get("n1"), { timeoutMs: 30_000, what: "read node n1" });
 */
export async function retrying<T>(operation: () => Promise<T>, options: { timeoutMs: number; what: string }): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let delay = 100;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof KernelError) throw error;
      if (Date.now() + delay > deadline) {
        throw new KernelError("ETIMEDOUT", `${options.what}: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}
