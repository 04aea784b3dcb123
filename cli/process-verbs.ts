import { KernelError, parseSignal, type ProcessRecord } from "../pseudokernel/index.js";
import { PROCESS_IO, withKernel, write, type VerbIo } from "./verb-io.js";
import { formatTable } from "./table.js";

function startTime(ms: number): string {
  const d = new Date(ms);
  const sameDay = new Date().toDateString() === d.toDateString();
  return sameDay ? d.toTimeString().slice(0, 8) : d.toISOString().slice(5, 10);
}

function psJson(p: ProcessRecord): Record<string, unknown> {
  return {
    pid: p.pid,
    ppid: p.ppid,
    node: p.node,
    user: p.user,
    state: p.state,
    started: new Date(p.started).toISOString(),
    command: p.argv.join(" "),
    argv: p.argv,
    hostPid: p.hostPid,
    cwd: p.cwd,
    ...(p.status !== undefined ? { status: p.status } : {}),
    ...(p.signal !== undefined ? { signal: p.signal } : {}),
  };
}

/** `oneos ps`: the cluster's process table, like `ps -ef`; `-a` adds ended and lost processes. */
export async function psVerb(options: { json?: boolean; all?: boolean; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  return await withKernel(io, options.nats, "oneos-ps", async (kernel) => {
    const all = await kernel.processes();
    const shown = options.all === true ? all : all.filter((p) => p.state === "running" || p.state === "stopped");
    if (options.json === true) {
      await write(io.out, JSON.stringify(shown.map(psJson), null, 2) + "\n");
    } else {
      await write(
        io.out,
        formatTable(
          ["PID", "PPID", "NODE", "USER", "STATE", "STIME", "CMD"],
          shown.map((p) => [String(p.pid), String(p.ppid), p.node, p.user, p.state, startTime(p.started), p.argv.join(" ")]),
        ),
      );
    }
    return 0;
  });
}

/** `oneos kill [-SIGNAL | -s SIGNAL] PID...`: signals processes wherever they run. */
export async function killVerb(args: readonly string[], nats: string | undefined, io: VerbIo = PROCESS_IO): Promise<number> {
  let signal = "SIGTERM";
  const pids: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-s" || arg === "-n") {
      signal = parseSignal(args[++i] ?? "");
    } else if (/^-[A-Za-z0-9]+$/.test(arg) && pids.length === 0) {
      signal = parseSignal(arg.slice(1));
    } else if (/^\d+$/.test(arg)) {
      pids.push(Number(arg));
    } else {
      throw new KernelError("EINVAL", `kill: ${arg}: arguments must be process IDs`);
    }
  }
  if (pids.length === 0) throw new KernelError("EINVAL", "kill: usage: oneos kill [-SIGNAL] PID...");
  return await withKernel(io, nats, "oneos-kill", async (kernel) => {
    let status = 0;
    for (const pid of pids) {
      try {
        await kernel.signal(pid, signal);
      } catch (error) {
        await write(io.err, `oneos: kill: ${(error as Error).message}\n`);
        status = 1;
      }
    }
    return status;
  });
}

/**
 * `oneos logs [-f] PID`: the last output of a process (its stdout and stderr as they went out, or its
 * terminal's screen), like `kubectl logs`; `-f` keeps printing what it writes until it ends.
 */
export async function logsVerb(pidText: string, options: { follow?: boolean; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid < 1) throw new KernelError("EINVAL", `logs: ${pidText}: not a PID`);
  return await withKernel(io, options.nats, "oneos-logs", async (kernel) => {
    const first = await kernel.tail(pid);
    let total = first.total;
    await write(io.out, first.data);
    while (options.follow === true) {
      await new Promise((r) => setTimeout(r, 500));
      const record = await kernel.process(pid);
      const next = await kernel.tail(pid).catch(() => null);
      if (next !== null && next.total > total) {
        // What came since the last look: the end of the tail (all of it if more than it holds came).
        const fresh = Math.min(next.total - total, next.data.length);
        await write(io.out, next.data.subarray(next.data.length - fresh));
        total = next.total;
      }
      if (next === null || record === null || (record.state !== "running" && record.state !== "stopped")) break;
    }
    return 0;
  });
}
