import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { eventually, type RunResult, type TestCluster } from "../harness/oneos-cluster.js";

/** Servers and clients that know nothing about oneos: plain sockets in Python. */
export const TOOL = fileURLToPath(new URL("./programs/tcp-tool.py", import.meta.url));

export interface PortRow {
  port: number;
  node: string;
  pid: number | null;
  command: string;
  addresses: string[];
}

/** `tcp-tool.py` run on a cluster's nodes, and the cluster's port table. */
export class TcpTool {
  constructor(private readonly cluster: TestCluster) {}

  async ports(): Promise<PortRow[]> {
    const r = await this.cluster.oneos(["ports", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as PortRow[];
  }

  /** Starts `tcp-tool.py server PORT ARGS` on a node in the background and waits until the cluster lists its port. */
  async serve(node: string, port: number, args: string): Promise<{ done: Promise<RunResult> }> {
    const { done } = this.cluster.start(["shell", "-c", `@${node} python3 ${TOOL} server ${port} ${args}`]);
    await eventually(async () => ((await this.ports()).some((p) => p.port === port && p.node === node) ? true : undefined), 10_000, `port ${port} on ${node}`);
    return { done };
  }

  /** Runs a `tcp-tool.py` client on a node; its last line of output, parsed. */
  async run(node: string, args: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const r = await this.cluster.sh(`@${node} python3 ${TOOL} ${args}`, { timeoutMs });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  }
}
