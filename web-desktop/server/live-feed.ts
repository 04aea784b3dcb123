import type { WebSocket } from "ws";
import type { KernelClient, NodeView, ProcessRecord } from "../../pseudokernel/index.js";
import { LIVE_INTERVAL_MS, LIVE_MAX_BUFFERED, LIVE_MAX_ENDED } from "./limits.js";

/** Server → browser messages on `/ws/live`. */
export type LiveMessage =
  | { readonly type: "nodes"; readonly at: number; readonly nodes: readonly NodeView[] }
  | { readonly type: "procs"; readonly at: number; readonly procs: readonly ProcessRecord[] }
  | { readonly type: "error"; readonly what: "nodes" | "procs"; readonly message: string };

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
  #last: { nodes?: string; procs?: string } = {};

  constructor(kernel: KernelClient) {
    this.#kernel = kernel;
  }

  watch(ws: WebSocket): void {
    this.#watchers.add(ws);
    // The newest sample at once, so a window opens with data rather than after a second.
    if (this.#last.nodes !== undefined) ws.send(this.#last.nodes);
    if (this.#last.procs !== undefined) ws.send(this.#last.procs);
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
      const [nodes, procs] = await Promise.allSettled([this.#kernel.nodes(), this.#kernel.processes()]);
      const at = Date.now();
      this.#broadcast(nodes.status === "fulfilled" ? { type: "nodes", at, nodes: nodes.value } : { type: "error", what: "nodes", message: String(nodes.reason) });
      this.#broadcast(procs.status === "fulfilled" ? { type: "procs", at, procs: trimEnded(procs.value) } : { type: "error", what: "procs", message: String(procs.reason) });
    } finally {
      this.#sampling = false;
    }
  }

  #broadcast(message: LiveMessage): void {
    const text = JSON.stringify(message);
    if (message.type === "nodes") this.#last.nodes = text;
    if (message.type === "procs") this.#last.procs = text;
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
