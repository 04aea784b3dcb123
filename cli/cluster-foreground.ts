import { LocalCluster, oneosHome } from "../cluster/index.js";
import { loadCredentials } from "../pseudokernel/index.js";
import { startDesktop } from "../web-desktop/index.js";
import { shellVerb } from "./shell-verb.js";

/**
 * `oneos cluster`: starts the local test cluster (unless one runs already), opens the shell, and
 * stops what it started when the shell exits or on Ctrl-C during start-up / SIGTERM / SIGHUP.
 */
export async function clusterForegroundVerb(options: { nodes: string }): Promise<number> {
  const cluster = new LocalCluster(oneosHome());
  const startedHere = !(await cluster.isRunning());
  let desktop: { url: string; close(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= startedHere ? cluster.down() : Promise.resolve());
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop().then(() => process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15)));
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGHUP", onSignal);
  process.once("SIGINT", onSignal);
  try {
    if (startedHere) {
      await cluster.up({ nodes: Number(options.nodes), log: (line) => process.stderr.write(`oneos: ${line}\n`) });
    }
    // From here on Ctrl-C belongs to the shell (it interrupts the foreground job).
    process.removeListener("SIGINT", onSignal);
    const names = (await cluster.status()).map((n) => n.name).join(" ");
    process.stderr.write(
      `oneos: cluster of ${names.split(" ").length} nodes ready (${names}).` +
        (startedHere ? " Leaving the shell stops it.\n" : " It was already running and stays up.\n"),
    );
    const url = await cluster.anyUrl();
    const credentials = await loadCredentials(cluster.credentialsFile("desktop")).catch(() => undefined);
    // The owner's fast path: the printed address carries a token that logs in as root, as this shell is.
    const ownerCredentials = await loadCredentials(cluster.credentialsFile("admin")).catch(() => undefined);
    desktop = url === null ? undefined : await startDesktop({ home: oneosHome(), natsUrl: url, port: 0, credentials, ownerCredentials }).catch((error: unknown) => {
      process.stderr.write(`oneos: the web desktop did not start: ${(error as Error).message}\n`);
      return undefined;
    });
    if (desktop !== undefined) process.stderr.write(`oneos: web desktop at ${desktop.url}\n`);
    return await shellVerb({});
  } finally {
    await desktop?.close().catch(() => undefined);
    await stop();
  }
}
