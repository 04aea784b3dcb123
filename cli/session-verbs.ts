import { KernelError, newStreamId } from "../pseudokernel/index.js";
import { DETACH_PREFIX } from "../shell/index.js";
import { connectKernel } from "./find-cluster.js";
import { formatTable } from "./table.js";

/** `oneos sessions`: processes running on a pseudo-terminal, attached or not (tmux's `ls`). */
export async function sessionsVerb(options: { json?: boolean; nats?: string }): Promise<number> {
  const kernel = await connectKernel(options.nats, "oneos-sessions");
  try {
    const sessions = (await kernel.processes()).filter(
      (p) => p.terminal !== undefined && (p.state === "running" || p.state === "stopped"),
    );
    if (options.json === true) {
      process.stdout.write(JSON.stringify(sessions.map((p) => ({ pid: p.pid, node: p.node, user: p.user, state: p.state, terminal: p.terminal, started: new Date(p.started).toISOString(), command: p.argv.join(" ") })), null, 2) + "\n");
    } else {
      process.stdout.write(
        formatTable(
          ["PID", "NODE", "USER", "STATE", "TERMINAL", "STARTED", "COMMAND"],
          sessions.map((p) => [String(p.pid), p.node, p.user, p.state, p.terminal ?? "", new Date(p.started).toTimeString().slice(0, 8), p.argv.join(" ")]),
        ),
      );
    }
    return 0;
  } finally {
    await kernel.close();
  }
}

/**
 * `oneos attach PID`: takes over the terminal of a process running on a pseudo-terminal, wherever it
 * runs: its recent output is replayed, keystrokes go to it, Ctrl-] d detaches again. Exits with the
 * process's status when it ends, 0 when detached.
 */
export async function attachVerb(pidText: string, options: { nats?: string }): Promise<number> {
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) throw new KernelError("EINVAL", `attach: ${pidText}: not a PID`);
  const kernel = await connectKernel(options.nats, "oneos-attach");
  const stdin = process.stdin;
  const stdout = process.stdout;
  try {
    const record = await kernel.process(pid);
    if (record === null || (record.state !== "running" && record.state !== "stopped")) {
      throw new KernelError("ESRCH", `attach: (${pid}) - No such process`);
    }
    if (record.terminal === undefined) throw new KernelError("EINVAL", `attach: (${pid}) does not run on a terminal`);
    const input = newStreamId();
    const output = newStreamId();
    const writer = kernel.writer(input);
    const reader = kernel.reader(output);
    writer.on("error", () => undefined);
    let detached = false;
    const ended = new Promise<void>((resolve) => {
      reader.once("end", resolve);
      reader.once("error", () => resolve());
    });
    reader.pipe(stdout, { end: false });
    await kernel.request(record.node, {
      type: "attach",
      pid,
      input,
      output,
      cols: stdout.columns || 80,
      rows: stdout.rows || 24,
    });
    const onResize = (): void => {
      void kernel.request(record.node, { type: "resize", pid, cols: stdout.columns || 80, rows: stdout.rows || 24 }).catch(() => undefined);
    };
    stdout.on("resize", onResize);
    if (stdin.isTTY === true) stdin.setRawMode(true);
    let prefixed = false;
    stdin.on("data", (bytes: Buffer) => {
      const out: number[] = [];
      for (const byte of bytes) {
        if (prefixed) {
          prefixed = false;
          if (byte === 0x64) {
            detached = true;
            void kernel.request(record.node, { type: "detach", pid }).catch(() => undefined);
            continue;
          }
          out.push(DETACH_PREFIX);
          if (byte === DETACH_PREFIX) continue;
        }
        if (byte === DETACH_PREFIX) prefixed = true;
        else out.push(byte);
      }
      if (out.length > 0) writer.write(Buffer.from(out));
    });
    await ended;
    stdout.off("resize", onResize);
    if (stdin.isTTY === true) stdin.setRawMode(false);
    stdin.pause();
    writer.destroy();
    // The output ended: detached, taken over by another client, or the process exited — in that
    // case its final record is being written; wait for it a little.
    let after = await kernel.process(pid);
    for (let i = 0; !detached && i < 30 && (after?.state === "running" || after?.state === "stopped"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await kernel.process(pid);
    }
    if (after !== null && (after.state === "running" || after.state === "stopped")) {
      stdout.write(`\r\n[${detached ? "detached" : "taken over by another client"}: oneos attach ${pid} re-enters]\r\n`);
      return 0;
    }
    return after?.status ?? 0;
  } finally {
    await kernel.close();
  }
}
