import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, open, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";

/** What one `nats-server` of a cluster needs to know. */
export interface NatsServerSpec {
  /** Server name, unique in the cluster (JetStream clustering requires one). */
  readonly name: string;
  /** Directory for the config file, the JetStream store and the log. */
  readonly dir: string;
  readonly clientPort: number;
  /** Route port; with no peers the server runs stand-alone. */
  readonly clusterPort: number;
  /** Route ports of the other servers. */
  readonly peers: readonly number[];
  /** Monitoring port (`/healthz`, `/varz`), or 0 for none. */
  readonly httpPort: number;
}

/**
 * The largest message the cluster accepts. Raised deliberately from NATS's 1 MiB default so a CloudFS
 * block (1 MiB) plus its envelope fits one message; stream frames stay far below it.
 */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

/** Renders the nats-server config file for one server of the cluster. */
export function natsServerConfig(spec: NatsServerSpec): string {
  const lines = [
    `server_name: ${JSON.stringify(spec.name)}`,
    `host: "127.0.0.1"`,
    `port: ${spec.clientPort}`,
    `max_payload: ${MAX_PAYLOAD_BYTES}`,
    // A slow consumer is disconnected, never silently dropped into: the stream never relies on this,
    // but runtimes must not lose their control connection because a big transfer was in flight.
    `write_deadline: "10s"`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(join(spec.dir, "jetstream"))}`,
    `  max_memory_store: 256MB`,
    `  max_file_store: 64GB`,
    `}`,
  ];
  if (spec.httpPort > 0) lines.push(`http: "127.0.0.1:${spec.httpPort}"`);
  if (spec.peers.length > 0) {
    lines.push(
      `cluster {`,
      `  name: "oneos"`,
      `  listen: "127.0.0.1:${spec.clusterPort}"`,
      `  routes: [${spec.peers.map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`)).join(", ")}]`,
      `}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Writes the config and starts `nats-server`; the caller decides whether it outlives us. */
export async function startNatsServer(
  spec: NatsServerSpec,
  options: { readonly detached?: boolean; readonly binary?: string } = {},
): Promise<ChildProcess> {
  await mkdir(spec.dir, { recursive: true });
  const configPath = join(spec.dir, "nats-server.conf");
  await writeFile(configPath, natsServerConfig(spec));
  const log = await open(join(spec.dir, "nats-server.log"), "a");
  try {
    const child = spawn(options.binary ?? "nats-server", ["-c", configPath], {
      detached: options.detached ?? false,
      stdio: ["ignore", log.fd, log.fd],
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    if (options.detached === true) child.unref();
    return child;
  } finally {
    await log.close();
  }
}

/** Resolves once something accepts TCP connections on the port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ port, host: "127.0.0.1" });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
