import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn, type IPty } from "node-pty";
import { LocalCluster } from "../cluster/index.js";
import { percentile, renderTable } from "./lib/measure.js";

const CLI = fileURLToPath(new URL("../cli/oneos.cjs", import.meta.url));

/** Types `keys` one at a time into `pty`, each after the previous one's echo; returns the echo delays. */
async function echoLatencies(pty: IPty, keys: number): Promise<number[]> {
  const delays: number[] = [];
  let waiting: { char: string; resolve: () => void } | undefined;
  let seen = "";
  pty.onData((data) => {
    seen += data;
    if (waiting !== undefined && seen.includes(waiting.char)) {
      const w = waiting;
      waiting = undefined;
      w.resolve();
    }
  });
  const alphabet = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < keys; i++) {
    const char = alphabet[i % alphabet.length]!;
    seen = "";
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo of key ${i}`)), 5000);
      waiting = { char, resolve: () => (clearTimeout(timer), resolve()) };
      pty.write(char);
    });
    delays.push(performance.now() - started);
    if (i % 60 === 59) pty.write("\r"); // keep lines short
  }
  return delays;
}

async function waitFor(pty: IPty, text: string, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${text}`)), timeoutMs);
    const sub = pty.onData((d) => {
      seen += d;
      if (seen.includes(text)) {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      }
    });
  });
}

/**
 * Issue #5's benchmark: keystroke echo latency through a remote PTY (the interactive shell running
 * `@n2 cat`: key → shell → n2's PTY line discipline echoes → back) next to a local PTY running `cat`,
 * both measured in this run.
 */
export async function runTerminalBench(options: { keys?: number } = {}): Promise<string> {
  const keys = options.keys ?? 500;
  const home = await mkdtemp(join(tmpdir(), "oneos-bench-tty-"));
  const cluster = new LocalCluster(home);
  try {
    const local = spawn("cat", [], { name: "xterm-256color", cols: 100, rows: 30, env: process.env as Record<string, string> });
    await new Promise((r) => setTimeout(r, 200));
    const localDelays = await echoLatencies(local, keys);
    local.kill();

    await cluster.up({ nodes: 3 });
    const shell = spawn(process.execPath, [CLI, "shell"], {
      name: "xterm-256color",
      cols: 100,
      rows: 30,
      env: { ...(process.env as Record<string, string>), ONEOS_HOME: home },
    });
    await waitFor(shell, "$ ", 30_000);
    shell.write("@n2 cat\r");
    await new Promise((r) => setTimeout(r, 1500));
    const remoteDelays = await echoLatencies(shell, keys);
    shell.write("\x03");
    await new Promise((r) => setTimeout(r, 300));
    shell.kill();
    const row = (name: string, d: number[]): string[] => [name, `${percentile(d, 50).toFixed(2)} ms`, `${percentile(d, 99).toFixed(2)} ms`];
    return renderTable(["keystroke echo (issue 5), " + keys + " keys", "p50", "p99"], [
      row("local PTY (`cat`)", localDelays),
      row("oneos remote PTY (`@n2 cat` from the shell)", remoteDelays),
    ]);
  } finally {
    await cluster.down({ purge: true }).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }
}
