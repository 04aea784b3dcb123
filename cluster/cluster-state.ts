import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { NatsServerSpec } from "./nats-server.js";

/** One node of the local test cluster as the launcher remembers it. */
export interface LocalNodeState {
  readonly name: string;
  /** The node's directory: NATS store, runtime state, logs. */
  readonly dir: string;
  readonly nats: NatsServerSpec;
  natsPid: number | null;
  runtimePid: number | null;
}

export interface LocalClusterState {
  readonly version: 1;
  readonly nodes: LocalNodeState[];
  readonly replicas: number;
}

export function clusterDir(home: string): string {
  return join(home, "cluster");
}

/** Where the local test cluster's CA, server certificate and identities' credentials files live. */
export function credentialsDir(home: string): string {
  return join(clusterDir(home), "credentials");
}

/** The client URL of a node's nats-server. */
export function natsUrl(node: LocalNodeState): string {
  return `nats://127.0.0.1:${node.nats.clientPort}`;
}

/** The URL of a node whose server and runtime are both up, or null (no cluster, or none up). */
export async function liveClusterUrl(home: string): Promise<string | null> {
  const state = await readClusterState(home);
  const node = state?.nodes.find((n) => isAlive(n.natsPid) && isAlive(n.runtimePid));
  return node === undefined ? null : natsUrl(node);
}

function statePath(home: string): string {
  return join(clusterDir(home), "state.json");
}

export async function readClusterState(home: string): Promise<LocalClusterState | null> {
  try {
    const state = JSON.parse(await readFile(statePath(home), "utf8")) as LocalClusterState;
    return state.version === 1 && Array.isArray(state.nodes) ? state : null;
  } catch {
    return null;
  }
}

export async function writeClusterState(home: string, state: LocalClusterState): Promise<void> {
  const path = statePath(home);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${path}.tmp`, path);
}

export function isAlive(pid: number | null): boolean {
  if (pid === null || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
