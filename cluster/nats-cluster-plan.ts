import { join } from "node:path";
import { freePort } from "./free-port.js";
import type { NatsServerSpec } from "./nats-server.js";

/**
 * Chooses free ports and directories for `names.length` nats-servers joined by routes.
 *
 * @example
 * const specs = await planNatsCluster("/tmp/c", ["n1", "n2", "n3"]);
 */
export async function planNatsCluster(dir: string, names: readonly string[]): Promise<NatsServerSpec[]> {
  const ports: { client: number; cluster: number; http: number }[] = [];
  const taken = new Set<number>();
  const fresh = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  for (let i = 0; i < names.length; i++) {
    ports.push({ client: await fresh(), cluster: await fresh(), http: await fresh() });
  }
  return names.map((name, i) => {
    const own = ports[i]!;
    return {
      name,
      dir: join(dir, name, "nats"),
      clientPort: own.client,
      clusterPort: own.cluster,
      httpPort: own.http,
      peers: names.length > 1 ? ports.filter((_, j) => j !== i).map((p) => p.cluster) : [],
    };
  });
}
