import { LocalCluster, oneosHome } from "../cluster/index.js";
import { KernelClient, KernelError } from "../pseudokernel/index.js";

/** The NATS URL a client verb talks to: `--nats`, else `$ONEOS_NATS`, else the local test cluster. */
export async function clusterUrl(explicit: string | undefined): Promise<string> {
  if (explicit !== undefined) return explicit;
  const fromEnv = process.env["ONEOS_NATS"];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const url = await new LocalCluster(oneosHome()).anyUrl();
  if (url === null) {
    throw new KernelError("ENONODE", `no cluster running in ${oneosHome()}: start one with 'oneos cluster up', or pass --nats URL`);
  }
  return url;
}

/** Connects to `--nats URL` or the cluster `clusterUrl` finds. */
export async function connectKernel(explicit: string | undefined, name: string): Promise<KernelClient> {
  return await KernelClient.connect(await clusterUrl(explicit), { name });
}
