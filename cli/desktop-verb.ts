import { oneosHome } from "../cluster/index.js";
import { KernelError } from "../pseudokernel/index.js";
import { startDesktop } from "../web-desktop/index.js";
import { clusterCredentials, clusterUrl } from "./find-cluster.js";

export interface DesktopVerbOptions {
  readonly port?: string;
  readonly host?: string;
  readonly nats?: string;
  readonly shellCreds?: string;
}

/** `oneos desktop [--port P]`: serves the web desktop until SIGINT/SIGTERM; prints its URL with the login token. */
export async function desktopVerb(options: DesktopVerbOptions): Promise<number> {
  const port = options.port === undefined ? 0 : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KernelError("EINVAL", `--port ${options.port}: expected 0..65535`);
  const desktop = await startDesktop({
    home: oneosHome(),
    natsUrl: await clusterUrl(options.nats),
    credentials: await clusterCredentials("desktop"),
    ...(options.shellCreds !== undefined ? { shellCredentialsFile: options.shellCreds } : {}),
    port,
    ...(options.host !== undefined ? { host: options.host } : {}),
  });
  process.stdout.write(`oneos desktop: open ${desktop.url}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
    process.once("SIGHUP", resolve);
  });
  await desktop.close();
  return 0;
}
