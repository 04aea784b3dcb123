import type { WebSocket } from "ws";
import { readAll, type KernelClient, type NodeView, type ProcessRecord } from "../../pseudokernel/index.js";
import { openPortRegistry, parsePortRecord, type PortRecord } from "../../runtime/netstack/index.js";
import { LIVE_INTERVAL_MS, LIVE_MAX_BUFFERED, LIVE_MAX_ENDED } from "./limits.js";

/** Server → browser messages on `/ws/live`. */
export type LiveMessage =
  | { readonly type: "nodes"; readonly at: number; readonly nodes: readonly NodeView[] }
  | { readonly type: "procs"; readonly at: number; readonly procs: readonly ProcessRecord[] }
  | { readonly type: "ports"; readonly at: number; readonly ports: readonly PortRecord[] }
  | { readonly type: "error"; readonly what: "nodes" | "procs" | "ports"; readonly message: string };

/** Running and stopped processes, plus the newest ended ones: the browser's table stays bounded. */
function trimEnded(procs: readonly ProcessRecord[]): ProcessRecord[] {
  const live = procs.filter((p) => p.state === "running" || p.state === "stopped");
  const ended = procs.filter((p) => p.state !== "running" && p.state !== "stopped").sort((a, b) => (b.ended ?? b.started) - (a.ended ?? a.started));
  return [...live, ...ended.slice(0, LIVE_MAX_ENDED)].sort((a, b) => a.pid - b.pid);
}

/**
 * Samples the cluster's nodes and processes through the kernel API once a second while at least one
 * browser watches, and sends each sample to every watcher. One sampler for all watchers, and never two
 * samples in flight: a slow cluster slows the feed, it does not pile up requests.
 */
export class LiveFeed {
  readonly #kernel: KernelClient;
  readonly #watchers = new Set<WebSocket>();
  #timer: NodeJS.Timeout | undefined;
  #sampling = false;
  #last: { nodes?: string; procs?: string; ports?: string } = {};

  constructor(kernel: KernelClient) {
    this.#kernel = kernel;
  }

  watch(ws: WebSocket): void {
    this.#watchers.add(ws);
    // The newest sample at once, so a window opens with data rather than after a second.
    if (this.#last.nodes !== undefined) ws.send(this.#last.nodes);
    if (this.#last.procs !== undefined) ws.send(this.#last.procs);
    if (this.#last.ports !== undefined) ws.send(this.#last.ports);
    ws.once("close", () => {
      this.#watchers.delete(ws);
      if (this.#watchers.size === 0) this.#stop();
    });
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.#sample(), LIVE_INTERVAL_MS);
      void this.#sample();
    }
  }

  /** Sends the next samples now (after an action such as a kill, so the browser sees its effect at once). */
  poke(): void {
    if (this.#watchers.size > 0) void this.#sample();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #sample(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const [nodes, procs, ports] = await Promise.allSettled([this.#kernel.nodes(), this.#kernel.processes(), this.#ports()]);
      const at = Date.now();
      this.#broadcast(ports.status === "fulfilled" ? { type: "ports", at, ports: ports.value } : { type: "error", what: "ports", message: String(ports.reason) });
      this.#broadcast(nodes.status === "fulfilled" ? { type: "nodes", at, nodes: nodes.value } : { type: "error", what: "nodes", message: String(nodes.reason) });
      this.#broadcast(procs.status === "fulfilled" ? { type: "procs", at, procs: trimEnded(procs.value) } : { type: "error", what: "procs", message: String(procs.reason) });
    } finally {
      this.#sampling = false;
    }
  }

  /** The cluster's listening ports (the netstack's registry, as `oneos ports` reads it); none without one. */
  async #ports(): Promise<PortRecord[]> {
    const kv = await openPortRegistry(this.#kernel.nc, { timeoutMs: 2000 }).catch(() => undefined);
    return kv === undefined ? [] : (await readAll(kv, parsePortRecord)).sort((a, b) => a.port - b.port);
  }

  #broadcast(message: LiveMessage): void {
    const text = JSON.stringify(message);
    if (message.type === "nodes") this.#last.nodes = text;
    if (message.type === "procs") this.#last.procs = text;
    if (message.type === "ports") this.#last.ports = text;
    for (const ws of this.#watchers) {
      // A browser that cannot keep up misses a sample; the next one carries the whole state again.
      if (ws.readyState === ws.OPEN && ws.bufferedAmount < LIVE_MAX_BUFFERED) ws.send(text);
    }
  }

  close(): void {
    this.#stop();
    for (const ws of this.#watchers) ws.close(1001, "desktop closing");
    this.#watchers.clear();
  }
}
