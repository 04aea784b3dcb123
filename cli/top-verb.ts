import { formatMemory } from "../scheduler/resources.js";
import type { KernelClient } from "../pseudokernel/index.js";
import { connectKernel } from "./find-cluster.js";
import { nodeCells } from "./nodes-verb.js";
import { formatTable } from "./table.js";
import { PROCESS_IO, write, type VerbIo } from "./verb-io.js";

/** Refresh period, like top's default of a few seconds but matching the heartbeat. */
const REFRESH_MS = 1000;
/** Processes shown under the nodes. */
const TOP_PROCESSES = 15;

/** One frame of `oneos top`: the nodes, then the busiest processes cluster-wide. */
export async function topFrame(kernel: KernelClient): Promise<string> {
  const [nodes, procs] = await Promise.all([kernel.nodes(), kernel.processes()]);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const ready = nodes.filter((n) => n.effective === "ready");
  const running = procs.filter((p) => p.state === "running" || p.state === "stopped").length;
  const header =
    `oneos top — ${new Date().toTimeString().slice(0, 8)} — ${ready.length}/${nodes.length} nodes ready, ` +
    `${running} processes\n\n`;
  const nodeTable = formatTable(
    ["NODE", "STATE", "LOAD", "CPUS", "MEM USED/TOTAL (GiB)", "PROCS", "RESERVED CPU", "RESERVED MEM", "LABELS"],
    nodes.map((n) => {
      return [
        ...nodeCells(n, n.memTotal - n.memFree),
        Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-",
      ];
    }),
  );
  const busiest = nodes
    .filter((n) => n.effective !== "down")
    .flatMap((n) => (n.busiest ?? []).map((u) => ({ ...u, node: n.name })))
    .sort((a, b) => b.cpu - a.cpu || b.rss - a.rss)
    .slice(0, TOP_PROCESSES);
  const procTable = formatTable(
    ["PID", "NODE", "%CPU", "RSS", "USER", "STATE", "COMMAND"],
    busiest.map((u) => {
      const p = byPid.get(u.pid);
      return [String(u.pid), u.node, u.cpu.toFixed(1), formatMemory(u.rss), p?.user ?? "?", p?.state ?? "?", p?.argv.join(" ") ?? "?"];
    }),
  );
  return `${header}${nodeTable}\n${procTable}`;
}

/**
 * `oneos top [-n N]`: refreshes every second until q or Ctrl-C (on a terminal, in the alternate
 * screen); `-n N` stops after N frames, and off a terminal each frame is printed in turn (like `top -b`).
 * Inside the shell (`io` with the session's connection) it prints N frames, one by default.
 */
export async function topVerb(options: { iterations?: string; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  if (io.kernel !== undefined) {
    // Inside the shell: frames printed in turn, as `top -b` prints them; one unless -n asks for more.
    const frames = options.iterations === undefined ? 1 : Number(options.iterations);
    for (let i = 0; i < frames; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, REFRESH_MS));
      await write(io.out, `${await topFrame(io.kernel)}\n`);
    }
    return 0;
  }
  const iterations = options.iterations === undefined ? Infinity : Number(options.iterations);
  const kernel = await connectKernel(options.nats, "oneos-top");
  const tty = process.stdout.isTTY === true;
  let stop = false;
  let wake: () => void = () => undefined;
  const quit = (): void => {
    stop = true;
    wake();
  };
  const onKey = (key: Buffer): void => {
    if (key.includes(0x71) || key.includes(0x03)) quit(); // q or Ctrl-C
  };
  if (tty) process.stdout.write("\x1b[?1049h\x1b[?25l");
  if (tty && process.stdin.isTTY === true) {
    process.stdin.setRawMode(true);
    process.stdin.on("data", onKey);
  }
  process.once("SIGINT", quit);
  try {
    for (let i = 0; i < iterations && !stop; i++) {
      const frame = await topFrame(kernel);
      process.stdout.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
      if (i + 1 < iterations) await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, REFRESH_MS);
      });
    }
    return 0;
  } finally {
    process.off("SIGINT", quit);
    if (tty && process.stdin.isTTY === true) {
      process.stdin.off("data", onKey);
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
    if (tty) process.stdout.write("\x1b[?25h\x1b[?1049l");
    await kernel.close();
  }
}
