import { CLUSTER_PORTS_SUBJECT, decode, encode, readAll, type KernelClient } from "../pseudokernel/index.js";
import { openPortRegistry, parsePortRecord, type PortRecord } from "../runtime/netstack/index.js";
import { formatTable } from "./table.js";
import { PROCESS_IO, withKernel, write, type VerbIo } from "./verb-io.js";

const ASK_TIMEOUT_MS = 2000;

/** The cluster's listening ports: a runtime's registry (any session may ask), else the bucket (admin). */
async function listPorts(kernel: KernelClient): Promise<PortRecord[]> {
  try {
    const msg = await kernel.nc.request(CLUSTER_PORTS_SUBJECT, encode({ type: "ports" }), { timeout: ASK_TIMEOUT_MS });
    const reply = decode(msg.data) as { ports?: unknown };
    if (!Array.isArray(reply.ports)) throw new Error("not a ports reply");
    return reply.ports.map((p) => parsePortRecord(p));
  } catch (error) {
    // No bucket yet: no runtime has a netstack (not root, or CloudFS off), so no ports.
    const kv = await openPortRegistry(kernel.nc, { timeoutMs: ASK_TIMEOUT_MS }).catch(() => undefined);
    if (kv === undefined) throw new Error(`no runtime answered with the ports (${(error as Error).message})`, { cause: error });
    return await readAll(kv, parsePortRecord);
  }
}

/** `oneos ports`: the cluster's listening TCP ports, like `ss -ltnp`: port, node, pid, command. */
export async function portsVerb(options: { json?: boolean; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  const ports = (await withKernel(io, options.nats, "oneos-ports", listPorts)).sort((a, b) => a.port - b.port);
  if (options.json === true) {
    await write(io.out, JSON.stringify(ports.map(({ port, node, pid, hostPid, command, addresses }) => ({ port, node, pid, hostPid, command, addresses })), null, 2) + "\n");
  } else {
    await write(
      io.out,
      formatTable(
        ["PORT", "NODE", "PID", "ADDRESS", "COMMAND"],
        ports.map((p) => [String(p.port), p.node, p.pid === null ? "-" : String(p.pid), p.addresses.join(","), p.command || "-"]),
      ),
    );
  }
  return 0;
}
