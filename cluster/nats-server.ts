import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, open, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import type { NatsSecurity } from "./cluster-credentials.js";

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

/** The TLS handshake of a client or route must finish within this (seconds); a loaded 2-core machine needs more than the 0.5 s default. */
const TLS_TIMEOUT_S = 5;

/**
 * Renders the nats-server config file for one server of the cluster. With `security`: clients must
 * use TLS and authenticate with an nkey of `security.users` (each with its subject permissions), routes
 * must use TLS with a certificate signed by the cluster CA (mutual TLS authenticates them), and there
 * is no monitoring port. Without, the server is open (test servers of single parts).
 */
export function natsServerConfig(spec: NatsServerSpec, security?: NatsSecurity): string {
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
  const tls = (indent: string, verify: boolean): string[] =>
    security === undefined
      ? []
      : [
          `${indent}tls {`,
          `${indent}  cert_file: ${JSON.stringify(security.certFile)}`,
          `${indent}  key_file: ${JSON.stringify(security.keyFile)}`,
          `${indent}  ca_file: ${JSON.stringify(security.caFile)}`,
          `${indent}  verify: ${verify}`,
          `${indent}  timeout: ${TLS_TIMEOUT_S}`,
          `${indent}}`,
        ];
  if (security === undefined) {
    if (spec.httpPort > 0) lines.push(`http: "127.0.0.1:${spec.httpPort}"`);
  } else {
    // Clients authenticate with nkeys, not certificates: verify stays off for them.
    lines.push(...tls("", false), ...authorization(security));
  }
  if (spec.peers.length > 0) {
    lines.push(
      `cluster {`,
      `  name: "oneos"`,
      `  listen: "127.0.0.1:${spec.clusterPort}"`,
      `  routes: [${spec.peers.map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`)).join(", ")}]`,
      ...tls("  ", true),
      `}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** The `authorization` block: one nkey user per identity, with allow-lists (quoted: `$JS` is not a variable). */
function authorization(security: NatsSecurity): string[] {
  const list = (subjects: readonly string[]): string => `[${subjects.map((s) => JSON.stringify(s)).join(", ")}]`;
  return [
    `authorization {`,
    `  users: [`,
    ...security.users.map(
      (u) =>
        `    # ${u.identity}\n` +
        `    { nkey: ${JSON.stringify(u.nkey)}, permissions: { publish: { allow: ${list(u.permissions.publish)} }, subscribe: { allow: ${list(u.permissions.subscribe)} } } }`,
    ),
    `  ]`,
    `}`,
  ];
}

/** Writes `nats-server.conf` in the spec's directory (a running server reads it again on SIGHUP). Returns its path. */
export async function writeNatsServerConfig(spec: NatsServerSpec, security?: NatsSecurity): Promise<string> {
  await mkdir(spec.dir, { recursive: true });
  const configPath = join(spec.dir, "nats-server.conf");
  // 0600: the config names the identities' public keys and permissions, nothing secret, but it is the cluster's.
  await writeFile(configPath, natsServerConfig(spec, security), { mode: 0o600 });
  return configPath;
}

/** Writes the config and starts `nats-server`; the caller decides whether it outlives us. */
export async function startNatsServer(
  spec: NatsServerSpec,
  options: { readonly detached?: boolean; readonly binary?: string; readonly security?: NatsSecurity } = {},
): Promise<ChildProcess> {
  const configPath = await writeNatsServerConfig(spec, options.security);
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
