import { createServer } from "node:net";

/**
 * Asks the kernel for a free TCP port on 127.0.0.1.
 *
 * The port is released before it is returned, so another process may take it in between; callers that
 * start a server on it must be ready to retry. This is how two local clusters (different `ONEOS_HOME`)
 * avoid clashing without fixed ports.
 *
 * @example
 * const port = await freePort();
 */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("free-port: no TCP address"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
