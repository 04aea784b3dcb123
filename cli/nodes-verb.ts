import type { NodeView } from "../pseudokernel/index.js";
import { formatCpu, formatMemory, NO_RESOURCES } from "../scheduler/resources.js";
import { PROCESS_IO, withKernel, write, type VerbIo } from "./verb-io.js";
import { formatTable } from "./table.js";

/** `oneos nodes`: every node with its state, labels, load, memory, processes, reservations and CloudFS dirty data. */
export async function nodesVerb(options: { json?: boolean; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  return await withKernel(io, options.nats, "oneos-nodes", async (kernel) => {
    const nodes = await kernel.nodes();
    if (options.json === true) {
      const out = nodes.map((n) => ({
        name: n.name,
        state: n.effective,
        labels: n.labels,
        load: n.load,
        cpus: n.cpus,
        memTotal: n.memTotal,
        memFree: n.memFree,
        procs: n.procs,
        allocatable: n.allocatable ?? { cpu: n.cpus, mem: n.memTotal },
        reserved: n.reserved ?? NO_RESOURCES,
        mount: n.mount,
        ...(n.cloudfs !== undefined ? { cloudfs: n.cloudfs } : {}),
        nats: n.nats,
        heartbeat: new Date(n.heartbeat).toISOString(),
      }));
      await write(io.out, JSON.stringify(out, null, 2) + "\n");
    } else {
      await write(
        io.out,
        formatTable(
          ["NAME", "STATE", "LOAD", "CPUS", "MEM FREE/TOTAL (GiB)", "PROCS", "RESERVED CPU", "RESERVED MEM", "FS DIRTY", "LABELS"],
          nodes.map((n) => {
            return [
              ...nodeCells(n, n.memFree),
              // CloudFS data not yet stored at R3, and how old the oldest unstored change is.
              n.cloudfs === undefined ? "-" : `${formatMemory(n.cloudfs.dirtyBytes)} ${(n.cloudfs.oldestDirtyAgeMs / 1000).toFixed(1)}s`,
              Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-",
            ];
          }),
        ),
      );
    }
    return 0;
  });
}

const gib = (b: number): string => (b / 2 ** 30).toFixed(1);

/**
 * The columns `oneos nodes` and `oneos top` share: name, state, load, CPUs, `mem` (free or used) over
 * the total in GiB, processes, and reserved CPU and memory over what the node can allocate.
 */
export function nodeCells(n: NodeView, mem: number): string[] {
  const reserved = n.reserved ?? NO_RESOURCES;
  const total = n.allocatable ?? { cpu: n.cpus, mem: n.memTotal };
  return [
    n.name,
    n.effective,
    n.load.toFixed(2),
    String(n.cpus),
    `${gib(mem)}/${gib(n.memTotal)}`,
    String(n.procs),
    `${formatCpu(reserved.cpu)}/${formatCpu(total.cpu)}`,
    `${formatMemory(reserved.mem)}/${formatMemory(total.mem)}`,
  ];
}
