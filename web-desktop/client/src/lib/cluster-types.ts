/** The shapes the server sends (mirrors of pseudokernel's NodeView and ProcessRecord, as JSON). */
export interface NodeInfo {
  readonly name: string;
  readonly state: string;
  readonly effective: "ready" | "suspect" | "down" | "leaving";
  readonly labels: Readonly<Record<string, string>>;
  readonly nats: string;
  readonly pid: number;
  readonly cpus: number;
  readonly load: number;
  readonly memTotal: number;
  readonly memFree: number;
  readonly procs: number;
  readonly mount: string | null;
  readonly heartbeat: number;
  readonly started: number;
}

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly node: string;
  readonly hostPid: number;
  readonly user: string;
  readonly state: "running" | "stopped" | "exited" | "killed" | "lost";
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly started: number;
  readonly ended?: number;
  readonly status?: number;
  readonly signal?: string;
}

/** A listening TCP port of the cluster (the netstack's registry). */
export interface PortInfo {
  readonly port: number;
  readonly node: string;
  readonly pid: number | null;
  readonly command: string;
  readonly addresses: readonly string[];
}

export type LiveMessage =
  | { readonly type: "nodes"; readonly at: number; readonly nodes: NodeInfo[] }
  | { readonly type: "procs"; readonly at: number; readonly procs: ProcessInfo[] }
  | { readonly type: "ports"; readonly at: number; readonly ports: PortInfo[] }
  | { readonly type: "error"; readonly what: "nodes" | "procs" | "ports"; readonly message: string };

export interface SessionInfo {
  /** The cluster user this browser is logged in as; everything it does acts as them. */
  readonly user: string;
  readonly uid: number;
  readonly localCluster: boolean;
  readonly uploadLimitBytes: number;
  readonly home: string;
}
