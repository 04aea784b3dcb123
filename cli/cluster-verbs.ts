import { LocalCluster, oneosHome } from "../cluster/index.js";
import { formatTable } from "./table.js";

export async function clusterUpVerb(options: { nodes?: string }): Promise<number> {
  const cluster = new LocalCluster(oneosHome());
  const nodes = options.nodes === undefined ? 3 : Number(options.nodes);
  await cluster.up({ nodes, log: (line) => process.stderr.write(`oneos: ${line}\n`) });
  return 0;
}

export async function clusterDownVerb(options: { purge?: boolean }): Promise<number> {
  await new LocalCluster(oneosHome()).down({ purge: options.purge === true });
  return 0;
}

export async function clusterStatusVerb(options: { json?: boolean }): Promise<number> {
  const nodes = await new LocalCluster(oneosHome()).status();
  if (options.json === true) {
    process.stdout.write(JSON.stringify({ nodes }, null, 2) + "\n");
  } else if (nodes.length === 0) {
    process.stdout.write(`no local cluster in ${oneosHome()}\n`);
  } else {
    process.stdout.write(
      formatTable(
        ["NAME", "STATE", "NATS", "PID", "MOUNT"],
        nodes.map((n) => [n.name, n.state, n.nats, n.pid === null ? "-" : String(n.pid), n.mount ?? "-"]),
      ),
    );
  }
  return 0;
}

export async function clusterKillVerb(node: string): Promise<number> {
  await new LocalCluster(oneosHome()).kill(node);
  return 0;
}

export async function clusterRestartVerb(node: string): Promise<number> {
  await new LocalCluster(oneosHome()).restart(node);
  return 0;
}
