import { reactive } from "vue";
import { backToLogin } from "./api.js";
import type { LiveMessage, NodeInfo, PortInfo, ProcessInfo } from "./cluster-types.js";

/** Samples kept per node for the charts: a minute at one sample a second. */
const HISTORY_SAMPLES = 60;
/** Reconnect delay after the live socket drops (the server restarting, a network blip). */
const RECONNECT_MS = 1500;

export interface NodeSample {
  readonly at: number;
  /** Load per CPU, 0..1+ (1 = every CPU busy). */
  readonly cpu: number;
  /** Memory in use, 0..1. */
  readonly mem: number;
}

export interface LiveState {
  connected: boolean;
  nodes: NodeInfo[];
  procs: ProcessInfo[];
  ports: PortInfo[];
  nodesAt: number;
  procsAt: number;
  history: Record<string, NodeSample[]>;
  error: string | null;
}

/** The cluster as the live WebSocket last showed it; every window reads from this one store. */
export const live: LiveState = reactive({ connected: false, nodes: [], procs: [], ports: [], nodesAt: 0, procsAt: 0, history: {}, error: null });

function record(nodes: NodeInfo[], at: number): void {
  for (const n of nodes) {
    const list = (live.history[n.name] ??= []);
    const used = n.memTotal > 0 ? 1 - n.memFree / n.memTotal : 0;
    list.push({ at, cpu: n.cpus > 0 ? n.load / n.cpus : 0, mem: used });
    if (list.length > HISTORY_SAMPLES) list.splice(0, list.length - HISTORY_SAMPLES);
  }
}

function handle(message: LiveMessage): void {
  switch (message.type) {
    case "nodes":
      live.nodes = message.nodes;
      live.nodesAt = message.at;
      record(message.nodes, message.at);
      live.error = null;
      break;
    case "procs":
      live.procs = message.procs;
      live.procsAt = message.at;
      break;
    case "ports":
      live.ports = message.ports;
      break;
    case "error":
      live.error = `${message.what}: ${message.message}`;
      break;
  }
}

let started = false;

/** Opens the live socket (once) and keeps it open. */
export function startLive(): void {
  if (started) return;
  started = true;
  const open = (): void => {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/live`);
    ws.onopen = () => (live.connected = true);
    ws.onmessage = (e) => {
      if (typeof e.data === "string") handle(JSON.parse(e.data) as LiveMessage);
    };
    ws.onclose = (e) => {
      live.connected = false;
      // 4401: this login ended (logged out in another tab, or expired).
      if (e.code === 4401) return backToLogin();
      setTimeout(() => {
        // A refused upgrade tells the page nothing: ask whether the login is still there first.
        fetch("/api/session", { credentials: "same-origin" }).then(
          (res) => (res.status === 401 ? backToLogin() : open()),
          () => open(),
        );
      }, RECONNECT_MS);
    };
  };
  open();
}
