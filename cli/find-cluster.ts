import { existsSync } from "node:fs";
// Not cluster/index.js: a client verb reads the local cluster's state file and nothing of its launcher.
import { credentialsFile } from "../cluster/cluster-credentials.js";
import { credentialsDir, liveClusterUrl } from "../cluster/cluster-state.js";
import { oneosHome } from "../cluster/home.js";
import { KernelClient, KernelError, loadCredentials, type NatsCredentials } from "../pseudokernel/index.js";

/** The identities a client verb connects as: the shell verb as `shell`, the desktop as `desktop`, the rest as `admin`. */
export type ClientIdentity = "admin" | "shell" | "desktop";

/** The NATS URL a client verb talks to: `--nats`, else `$ONEOS_NATS`, else the local test cluster. */
export async function clusterUrl(explicit: string | undefined): Promise<string> {
  if (explicit !== undefined) return explicit;
  const fromEnv = process.env["ONEOS_NATS"];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const url = await liveClusterUrl(oneosHome());
  if (url === null) {
    throw new KernelError("ENONODE", `no cluster running in ${oneosHome()}: start one with 'oneos cluster up', or pass --nats URL`);
  }
  return url;
}

/**
 * The credentials a client verb connects with: `--creds FILE` (main.ts puts it in `$ONEOS_CREDS`), else
 * `$ONEOS_CREDS`, else the local test cluster's file for `identity` in ONEOS_HOME, else none (a
 * cluster without authentication).
 */
export async function clusterCredentials(identity: ClientIdentity): Promise<NatsCredentials | undefined> {
  const explicit = process.env["ONEOS_CREDS"];
  if (explicit !== undefined && explicit !== "") return await loadCredentials(explicit);
  const local = credentialsFile(credentialsDir(oneosHome()), identity);
  return existsSync(local) ? await loadCredentials(local) : undefined;
}

/** Connects to `--nats URL` or the cluster `clusterUrl` finds, as `identity` (default admin). */
export async function connectKernel(explicit: string | undefined, name: string, identity: ClientIdentity = "admin"): Promise<KernelClient> {
  const kernel = await KernelClient.connect(await clusterUrl(explicit), { name, credentials: await clusterCredentials(identity) });
  // The admin acts as root: the first kernel request that needs a session gets one issued.
  if (identity === "admin") kernel.issueSessionsFor("root");
  return kernel;
}
