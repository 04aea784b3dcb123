import { join } from "node:path";
import { pino } from "pino";
import { LocalCluster, oneosHome } from "../cluster/index.js";
import { KernelError, NODE_NAME_PATTERN } from "../pseudokernel/index.js";
import { NodeRuntime } from "../runtime/index.js";

/** `oneos node`: runs this machine's runtime in the foreground until SIGTERM/SIGINT. */
export async function nodeVerb(options: {
  nats: string;
  name: string;
  label?: string[];
  stateDir?: string;
  replicas?: string;
  cloudfs?: string;
  hostname?: string;
  /** The node's credentials file (`node-<name>.creds`); default `$ONEOS_CREDS`; none: anonymous. */
  creds?: string;
}): Promise<number> {
  const cloudfs = options.cloudfs ?? "auto";
  if (cloudfs !== "required" && cloudfs !== "auto" && cloudfs !== "off") {
    throw new KernelError("EINVAL", `--cloudfs ${cloudfs}: expected required, auto or off`);
  }
  if (!NODE_NAME_PATTERN.test(options.name)) {
    throw new KernelError("EINVAL", `node name '${options.name}': use letters, digits, '-' and '_'`);
  }
  if (options.hostname !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(options.hostname)) {
    throw new KernelError("EINVAL", `--hostname ${options.hostname}: use letters, digits, '.' and '-' (at most 64)`);
  }
  const labels: Record<string, string> = {};
  for (const label of options.label ?? []) {
    const eq = label.indexOf("=");
    if (eq <= 0) throw new KernelError("EINVAL", `--label ${label}: expected key=value`);
    labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  const replicas = options.replicas === undefined ? undefined : Number(options.replicas);
  let creds = options.creds ?? process.env["ONEOS_CREDS"];
  if (creds === undefined || creds === "") {
    // Joining the local test cluster from the machine that owns it: its owner may admit a new node.
    const local = new LocalCluster(oneosHome());
    if (await local.owns(options.nats)) creds = await local.admitNode(options.name);
  }
  const logger = pino({ base: { node: options.name } });
  const runtime = await NodeRuntime.start({
    nats: options.nats,
    name: options.name,
    labels,
    stateDir: options.stateDir ?? join(oneosHome(), "node", options.name),
    logger,
    cloudfs,
    ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
    ...(replicas !== undefined ? { replicas } : {}),
    ...(creds !== undefined && creds !== "" ? { credentialsFile: creds } : {}),
    // Where nodes cannot reach each other's data ports (see README, Netstack).
    ...(process.env["ONEOS_PEER_LINKS"] === "off" ? { peerLinks: false } : {}),
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    process.once("SIGHUP", stop);
  });
  await runtime.close();
  return 0;
}
