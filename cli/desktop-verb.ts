import { oneosHome } from "../cluster/index.js";
import { KernelError, type NatsCredentials } from "../pseudokernel/index.js";
import { startDesktop } from "../web-desktop/index.js";
import { clusterCredentials, clusterUrl } from "./find-cluster.js";

export interface DesktopVerbOptions {
  readonly port?: string;
  readonly host?: string;
  readonly nats?: string;
  readonly shellCreds?: string;
}

/**
 * The owner's fast path: run beside the local test cluster (no `--nats`, no `--creds`) by the user who
 * can read its admin credentials, the desktop prints a URL with a token that logs in as root — what
 * `oneos shell` without `--user` gives the same person. Elsewhere: name and password only.
 */
async function ownerCredentials(options: DesktopVerbOptions): Promise<NatsCredentials | undefined> {
  if (options.nats !== undefined || (process.env["ONEOS_CREDS"] ?? "") !== "") return undefined;
  // Someone who cannot read the owner's credentials gets no owner token.
  return await clusterCredentials("admin").catch(() => undefined);
}

/** `oneos desktop [--port P]`: serves the web desktop until SIGINT/SIGTERM; prints its URL (with the owner's token, when there is one). */
export async function desktopVerb(options: DesktopVerbOptions): Promise<number> {
  const port = options.port === undefined ? 0 : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KernelError("EINVAL", `--port ${options.port}: expected 0..65535`);
  const desktop = await startDesktop({
    home: oneosHome(),
    natsUrl: await clusterUrl(options.nats),
    credentials: await clusterCredentials("desktop"),
    ownerCredentials: await ownerCredentials(options),
    ...(options.shellCreds !== undefined ? { shellCredentialsFile: options.shellCreds } : {}),
    port,
    ...(options.host !== undefined ? { host: options.host } : {}),
  });
  process.stdout.write(`oneos desktop: open ${desktop.url}\n`);
  if (desktop.token === null) process.stdout.write("oneos desktop: log in with a cluster user's name and password\n");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    process.once("SIGHUP", resolve);
  });
  await desktop.close();
  return 0;
}
