import { readAll } from "../pseudokernel/index.js";
import { openPortRegistry, parsePortRecord } from "../runtime/netstack/index.js";
import { connectKernel } from "./find-cluster.js";
import { formatTable } from "./table.js";

/** `oneos ports`: the cluster's listening TCP ports, like `ss -ltnp`: port, node, pid, command. */
export async function portsVerb(options: { json?: boolean; nats?: string }): Promise<number> {
  const kernel = await connectKernel(options.nats, "oneos-ports");
  try {
    // No bucket yet: no runtime has a netstack (not root, or CloudFS off), so no ports.
    const kv = await openPortRegistry(kernel.nc, { timeoutMs: 2000 }).catch(() => undefined);
    const ports = kv === undefined ? [] : (await readAll(kv, parsePortRecord)).sort((a, b) => a.port - b.port);
    if (options.json === true) {
      process.stdout.write(JSON.stringify(ports.map(({ port, node, pid, hostPid, command, addresses }) => ({ port, node, pid, hostPid, command, addresses })), null, 2) + "\n");
    } else {
      process.stdout.write(
        formatTable(
          ["PORT", "NODE", "PID", "ADDRESS", "COMMAND"],
          ports.map((p) => [String(p.port), p.node, p.pid === null ? "-" : String(p.pid), p.addresses.join(","), p.command || "-"]),
        ),
      );
    }
    return 0;
  } finally {
    await kernel.close();
  }
}
